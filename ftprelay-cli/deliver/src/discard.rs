//! `--discard`: log the file, keep nothing.

use std::fmt;

use ftprelay_proto::Upload;

use crate::destinations::{Delivery, Destination};
use crate::fields::Fields;

/// Logs each upload's name and size, and drops the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Destination for Discard {
    fn deliver<'a>(&'a self, upload: &'a Upload, fields: &'a Fields) -> Delivery<'a> {
        tracing::info!(name = fields.name(), size = upload.size(), "discarded");
        Box::pin(std::future::ready(Ok(())))
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("discard")
    }
}
