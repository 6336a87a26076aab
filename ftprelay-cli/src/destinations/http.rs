//! `--http URL` and its companions, `type = "http"`.

use clap::Args;
use ftprelay_deliver::{Http, HttpMethod};
use serde::Deserialize;

use super::{Context, invalid};
use crate::error::CliError;

/// The `--http` flags.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// Destination: send the file to URL (a template, values
    /// percent-encoded); a 2xx answer means success.
    #[arg(long, value_name = "URL")]
    pub(crate) http: Option<String>,
    /// The --http request's method: POST or PUT [default: POST].
    #[arg(long, value_name = "METHOD", requires = "http")]
    pub(crate) http_method: Option<String>,
    /// A --http request header, 'Name: value' (the value a template);
    /// repeatable.
    #[arg(long, value_name = "'NAME: VALUE'", requires = "http")]
    pub(crate) http_header: Vec<String>,
    /// Send a multipart/form-data form with the file under FIELD (its
    /// safe name, a content type from its extension) instead of the raw
    /// file.
    #[arg(long, value_name = "FIELD", requires = "http")]
    pub(crate) http_form: Option<String>,
    /// A field of the --http-form form, NAME=VALUE (the value a
    /// template); repeatable.
    #[arg(long, value_name = "NAME=VALUE", requires = "http_form")]
    pub(crate) http_field: Vec<String>,
}

impl HttpArgs {
    pub(crate) fn entry(&self) -> Result<Option<HttpEntry>, CliError> {
        Ok(self.http.clone().map(|url| HttpEntry {
            url,
            method: self.http_method.clone(),
            headers: self.http_header.clone(),
            form: self.http_form.clone(),
            fields: self.http_field.clone(),
        }))
    }
}

/// `[[destinations]] type = "http"`: the flags' settings under their names
/// without `http-` (`headers` and `fields` lists, as the flags write them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpEntry {
    /// Where to send the file, a template.
    pub(crate) url: String,
    /// `POST` (the default) or `PUT`.
    pub(crate) method: Option<String>,
    /// `Name: value` lines, each value a template.
    #[serde(default)]
    pub(crate) headers: Vec<String>,
    /// The form field of the file: a multipart form instead of the raw
    /// file.
    pub(crate) form: Option<String>,
    /// `NAME=VALUE` form fields, each value a template.
    #[serde(default)]
    pub(crate) fields: Vec<String>,
}

impl HttpEntry {
    /// A plain POST of the file to `url`.
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            method: None,
            headers: Vec::new(),
            form: None,
            fields: Vec::new(),
        }
    }

    pub(crate) fn build(&self, context: &Context) -> Result<Http, CliError> {
        let mut http =
            Http::new(&self.url, &context.trust, context.process_timeout).map_err(invalid)?;
        if let Some(method) = &self.method {
            http = http.method(method.parse::<HttpMethod>().map_err(invalid)?);
        }
        if let Some(field) = &self.form {
            http = http.form(field).map_err(invalid)?;
        }
        for line in &self.headers {
            http = http.header(line).map_err(invalid)?;
        }
        for assignment in &self.fields {
            http = http.field(assignment).map_err(invalid)?;
        }
        Ok(http)
    }
}
