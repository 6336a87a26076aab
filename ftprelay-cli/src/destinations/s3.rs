//! `--s3 s3://BUCKET/KEY-TEMPLATE` and its companions, `type = "s3"`.

use std::path::PathBuf;

use clap::Args;
use ftprelay_deliver::{AwsSettings, S3};
use serde::Deserialize;

use super::{Context, invalid};
use crate::error::CliError;

/// The `--s3` flags.
#[derive(Debug, Args)]
pub(crate) struct S3Args {
    /// Destination: store each file in an S3 bucket under a key template
    /// (s3://BUCKET/{user}/{date}/{name}; empty: {path}/{name}; ending in
    /// /: {name} appended). Credentials, region and endpoint as the AWS CLI
    /// finds them (AWS_* variables, ~/.aws/credentials, ~/.aws/config).
    #[arg(long, value_name = "URL")]
    pub(crate) s3: Option<String>,
    /// The S3-compatible server (MinIO, Garage, Ceph), reached path style
    /// [default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
    /// endpoint_url, else AWS].
    #[arg(long, value_name = "URL", requires = "s3")]
    pub(crate) s3_endpoint: Option<String>,
    /// The region requests are signed for [default: AWS_REGION,
    /// AWS_DEFAULT_REGION, the profile's region, else us-east-1].
    #[arg(long, value_name = "REGION", requires = "s3")]
    pub(crate) s3_region: Option<String>,
    /// The profile of ~/.aws/credentials and ~/.aws/config to use (wins
    /// over AWS_ACCESS_KEY_ID) [default: AWS_PROFILE, else default].
    #[arg(long, value_name = "NAME", requires = "s3")]
    pub(crate) s3_profile: Option<String>,
    /// The credentials file to read instead of ~/.aws/credentials (wins
    /// over AWS_ACCESS_KEY_ID; the format of ~/.aws/credentials).
    #[arg(long, value_name = "FILE", requires = "s3")]
    pub(crate) s3_credentials_file: Option<PathBuf>,
    /// Files over this many MiB go as multipart uploads of parts this size
    /// (5 to 5120) [default: 8].
    #[arg(long, value_name = "MIB", requires = "s3")]
    pub(crate) s3_part_size: Option<u64>,
}

impl S3Args {
    pub(crate) fn entry(&self) -> Option<S3Entry> {
        self.s3.clone().map(|url| S3Entry {
            url,
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            profile: self.s3_profile.clone(),
            credentials_file: self.s3_credentials_file.clone(),
            part_size_mib: self.s3_part_size,
        })
    }
}

/// `[[destinations]] type = "s3"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct S3Entry {
    /// `s3://BUCKET/KEY-TEMPLATE`.
    pub(crate) url: String,
    /// An S3-compatible server's URL.
    pub(crate) endpoint: Option<String>,
    /// The region.
    pub(crate) region: Option<String>,
    /// A profile of the AWS files.
    pub(crate) profile: Option<String>,
    /// A credentials file in place of ~/.aws/credentials.
    pub(crate) credentials_file: Option<PathBuf>,
    /// The multipart part size, MiB.
    pub(crate) part_size_mib: Option<u64>,
}

impl S3Entry {
    pub(crate) fn build(&self, context: &Context) -> Result<S3, CliError> {
        let aws = AwsSettings::from_environment(
            self.profile.as_deref(),
            self.credentials_file.as_deref(),
        )
        .map_err(|e| invalid(format!("s3: {e}")))?;
        let mut builder = S3::builder(&self.url)
            .map_err(|e| invalid(format!("s3: {e}")))?
            .aws(aws)
            .trust(context.trust.clone())
            .timeout(request_timeout(context.process_timeout));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint(endpoint.clone());
        }
        if let Some(region) = &self.region {
            builder = builder.region(region.clone());
        }
        if let Some(mib) = self.part_size_mib {
            let bytes = mib
                .checked_mul(1 << 20)
                .ok_or_else(|| invalid(format!("s3: a part size of {mib} MiB is over 5120")))?;
            builder = builder.part_size(bytes);
        }
        builder.build().map_err(|e| invalid(format!("s3: {e}")))
    }
}

/// Each request's own timeout: before the relay's processing timeout (a
/// second before it, or half of it when that is shorter), so that a
/// request fails, and says why, before the relay gives up on the upload.
fn request_timeout(process_timeout: std::time::Duration) -> std::time::Duration {
    process_timeout
        .saturating_sub(std::time::Duration::from_secs(1))
        .max(process_timeout / 2)
}
