//! `--mail-to ADDR` and its companions, `type = "mail"`.

use std::time::Duration;

use clap::Args;
use ftprelay_deliver::{Mail, SmtpServer, Template};
use serde::Deserialize;

use super::{Context, invalid};
use crate::args::parse_size;
use crate::error::CliError;
use crate::file::Size;

/// The `--mail-to` flags.
#[derive(Debug, Args)]
pub(crate) struct MailArgs {
    /// Destination: mail each file, attached, to ADDR (repeatable; needs
    /// --smtp and --mail-from).
    #[arg(long = "mail-to", value_name = "ADDR")]
    pub(crate) mail_to: Vec<String>,
    /// The SMTP server of --mail-to: `smtp://[USER:PASS@]HOST[:PORT]`
    /// (plain, port 25), with `?tls=required` (STARTTLS or no delivery,
    /// port 587) or `?tls=opportunistic`; `smtps://…` (TLS, port 465).
    #[arg(long, value_name = "URL", requires = "mail_to")]
    pub(crate) smtp: Option<String>,
    /// The sender of --mail-to's messages (`ADDR` or `'Name <ADDR>'`).
    #[arg(long = "mail-from", value_name = "ADDR", requires = "mail_to")]
    pub(crate) mail_from: Option<String>,
    /// The subject of --mail-to's messages, a template [default: {name} from {user}].
    #[arg(long = "mail-subject", value_name = "TEMPLATE", requires = "mail_to")]
    pub(crate) mail_subject: Option<String>,
    /// The largest file --mail-to sends; a larger one is refused with 552
    /// (each message is built in memory) [default: 25M].
    #[arg(long = "mail-max-size", value_name = "BYTES", value_parser = parse_size, requires = "mail_to")]
    pub(crate) mail_max_size: Option<u64>,
}

impl MailArgs {
    pub(crate) fn entry(&self) -> Option<MailEntry> {
        if self.mail_to.is_empty() {
            return None;
        }
        Some(MailEntry {
            to: self.mail_to.clone(),
            smtp: self.smtp.clone(),
            from: self.mail_from.clone(),
            subject: self.mail_subject.clone(),
            max_size: self.mail_max_size.map(Size::Bytes),
        })
    }
}

/// `[[destinations]] type = "mail"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailEntry {
    /// The recipients.
    pub(crate) to: Vec<String>,
    /// The SMTP server's URL.
    pub(crate) smtp: Option<String>,
    /// The sender.
    pub(crate) from: Option<String>,
    /// The subject, a template.
    pub(crate) subject: Option<String>,
    /// The largest file mailed, bytes or `"25M"`.
    pub(crate) max_size: Option<Size>,
}

impl MailEntry {
    pub(crate) fn build(&self, context: &Context) -> Result<Mail, CliError> {
        let smtp = self.smtp.as_deref().ok_or_else(|| {
            invalid("the mail destination needs an SMTP server (--smtp URL, smtp = \"…\")")
        })?;
        let from = self.from.as_deref().ok_or_else(|| {
            invalid("the mail destination needs a sender (--mail-from ADDR, from = \"…\")")
        })?;
        let server = SmtpServer::parse(smtp).map_err(invalid)?;
        let mut mail = Mail::new(server, from, &self.to, &context.trust)
            .map_err(invalid)?
            .timeout(step_timeout(context.process_timeout));
        if let Some(subject) = &self.subject {
            let template =
                Template::parse(subject).map_err(|e| invalid(format!("--mail-subject: {e}")))?;
            mail = mail.subject(template);
        }
        match &self.max_size {
            Some(Size::Bytes(bytes)) => mail = mail.max_size(*bytes),
            Some(Size::Text(text)) => {
                mail =
                    mail.max_size(parse_size(text).map_err(|e| invalid(format!("max_size: {e}")))?);
            }
            None => {}
        }
        Ok(mail)
    }
}

/// Each SMTP step's timeout: before the relay's processing timeout (a
/// second before it, or half of it when that is shorter), so that a stuck
/// server fails with its reason in the log before the relay gives up.
fn step_timeout(process_timeout: Duration) -> Duration {
    process_timeout
        .saturating_sub(Duration::from_secs(1))
        .max(process_timeout / 2)
}
