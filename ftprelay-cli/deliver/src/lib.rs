//! Where ftprelay's uploads go: the destinations of the `ftprelay` binary,
//! for library users too.
//!
//! Each destination implements [`Destination`]; a list of them,
//! [`Destinations`], is a [`FileProcessor`](ftprelay_proto::FileProcessor)
//! that delivers every upload to all of them and succeeds only when every
//! one did. Names that a destination writes (folders, object keys, remote
//! paths, subjects, URLs) are [`Template`]s with placeholders such as
//! `{user}`, `{name}` and `{date}`, checked when they are parsed.
//!
//! The destinations run under any executor: the network clients run on a
//! tokio runtime (the caller's when there is one, else one of this
//! crate's), and dropping a delivery cancels it.
//!
//! ```no_run
//! use ftprelay_deliver::{Destinations, Directory};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Every upload into /srv/scans/<user>/<date>/, complete or not at all.
//! let archive = Directory::parse("/srv/scans/{user}/{date}")?;
//! let processor = Destinations::new(vec![Box::new(archive)]);
//! // `processor` is what an `Authenticator` returns for a login.
//! # let _ = processor;
//! # Ok(())
//! # }
//! ```

mod cancel;
mod collision;
mod destinations;
mod dir;
mod discard;
mod exec;
mod fields;
mod http;
mod local_name;
mod mail;
mod output;
mod queue;
mod redact;
mod runtime;
mod s3;
mod sftp;
mod small_file;
mod template;
mod trust;

pub use destinations::{Delivery, DeliveryObserver, Destination, Destinations};
pub use dir::Directory;
pub use discard::Discard;
pub use exec::{Command, DEFAULT_LOG_LIMIT as DEFAULT_EXEC_LOG_LIMIT, UPLOAD_VARIABLES};
pub use fields::{Fields, InvalidId};
pub use http::{Http, HttpError, Method as HttpMethod};
pub use mail::{
    DEFAULT_MAX_SIZE as DEFAULT_MAIL_MAX_SIZE, DEFAULT_SUBJECT as DEFAULT_MAIL_SUBJECT, Mail,
    MailError, SmtpSecurity, SmtpServer,
};
pub use queue::{
    Backoff, Capacity, Limits, Listed, Queue, QueueError, QueueSettings, Request as QueueRequest,
    Routes, list as list_queue, request as queue_request, show as show_queue,
};
pub use s3::{AwsSettings, Credentials, S3, S3Builder, S3Error};
pub use sftp::{Sftp, SftpError};
pub use template::{Escape, Placeholder, Template, TemplateError};
pub use trust::{Trust, TrustError};
