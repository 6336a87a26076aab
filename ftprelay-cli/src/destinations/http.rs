//! `--http URL` and its companions, `type = "http"`.

use clap::Args;
use ftprelay_deliver::Http;
use serde::Deserialize;

use super::{Context, invalid};
use crate::error::CliError;

/// The `--http` flags.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// Destination: POST the file to URL (a 2xx answer means success).
    #[arg(long, value_name = "URL")]
    pub(crate) http: Option<String>,
}

impl HttpArgs {
    pub(crate) fn entry(&self) -> Result<Option<HttpEntry>, CliError> {
        Ok(self.http.clone().map(HttpEntry::new))
    }
}

/// `[[destinations]] type = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpEntry {
    /// Where to send the file.
    pub(crate) url: String,
}

impl HttpEntry {
    /// A plain POST of the file to `url`.
    pub(crate) fn new(url: String) -> Self {
        Self { url }
    }

    pub(crate) fn build(&self, context: &Context) -> Result<Http, CliError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(invalid(format!(
                "the http destination needs an http:// or https:// URL, got {:?}",
                self.url
            )));
        }
        Ok(Http::new(self.url.clone(), context.process_timeout))
    }
}
