//! A static site's revisions in an S3 bucket, each build under a prefix of
//! its own (`site/<revision>/`), the way a CDN origin serves them.
//!
//! - [`publish`]: a build uploaded with its content types and cache headers
//!   ([`crate::site::files`]), what is already there skipped, the result
//!   verified by listing; blue's content-hashed assets carried into green's
//!   prefix so that pages loaded before the switch still find them;
//! - [`prune`]: old revisions deleted past a count, never one in use;
//! - [`fleet`]: the site as a fleet, each slot a revision's prefix.
//!
//! A bucket reached through a custom endpoint (`AWS_ENDPOINT_URL`: moto,
//! MinIO, LocalStack) is addressed path-style (`host/bucket/key`): such
//! endpoints have no per-bucket host names.

pub mod fleet;
pub mod prune;
pub mod publish;

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::ports::{ErrorKind, PortError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, unquoted: the hex MD5 of its bytes for an object uploaded
    /// in one part without KMS encryption.
    pub etag: String,
    /// When it was last written (ms since the epoch).
    pub modified: u64,
}

/// The revisions of one site in one bucket: `s3://bucket/prefix/<revision>/`.
#[derive(Debug, Clone)]
pub struct SiteBucket {
    client: aws_sdk_s3::Client,
    calls: Arc<ApiCalls>,
    /// The bucket's name.
    pub bucket: String,
    /// The prefix under which each revision has its own (`site`).
    pub prefix: String,
}

impl SiteBucket {
    /// The revisions under `s3://bucket/prefix/`.
    pub fn new(aws: &Aws, bucket: &str, prefix: &str) -> SiteBucket {
        let mut config = aws_sdk_s3::config::Builder::from(&aws.sdk);
        if aws.sdk.endpoint_url().is_some() {
            config = config.force_path_style(true);
        }
        SiteBucket {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            calls: aws.calls.clone(),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The key prefix of `revision`'s files (`site/v2/`).
    pub fn revision_prefix(&self, revision: &str) -> String {
        match self.prefix.is_empty() {
            true => format!("{revision}/"),
            false => format!("{}/{revision}/", self.prefix),
        }
    }

    /// The bucket exists and this caller may use it (`HeadBucket`); a
    /// missing bucket is `NotFound`, naming it.
    pub async fn check(&self) -> Result<(), PortError> {
        aws_call!(
            self.calls,
            "HeadBucket",
            self.client.head_bucket().bucket(&self.bucket).send()
        )
        .map(|_| ())
        .map_err(|e| match e.kind {
            // HeadBucket answers 404 (or 403 for another account's) with no body.
            ErrorKind::NotFound | ErrorKind::Invalid => PortError::new(
                "HeadBucket",
                ErrorKind::NotFound,
                format!("s3://{}: no such bucket ({})", self.bucket, e.message),
            ),
            _ => e,
        })
    }

    /// Every object under `prefix`, by key (`ListObjectsV2`, 1,000 a page).
    pub async fn list(&self, prefix: &str) -> Result<BTreeMap<String, Listed>, PortError> {
        let mut objects = BTreeMap::new();
        let mut token = None;
        loop {
            let out = aws_call!(
                self.calls,
                "ListObjectsV2",
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
            )?;
            for o in out.contents() {
                let Some(key) = o.key() else { continue };
                objects.insert(
                    key.to_string(),
                    Listed {
                        size: o.size().unwrap_or(0).max(0) as u64,
                        etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                        modified: o
                            .last_modified()
                            .and_then(|t| t.to_millis().ok())
                            .map_or(0, |m| m.max(0) as u64),
                    },
                );
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(objects),
            }
        }
    }
}

/// Whether `revision` can name a prefix: one path segment of safe
/// characters, not starting with a dot (teal's own keys do).
pub fn valid_revision(revision: &str) -> bool {
    !revision.is_empty()
        && !revision.starts_with('.')
        && revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
}
