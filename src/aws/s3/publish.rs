//! A build uploaded to its revision's prefix: idempotent, verified.
//!
//! A file whose object is already there with the same size and MD5 (the
//! ETag of a one-part upload) is skipped, so a pipeline that runs again
//! after a failure uploads only what it had not. Each upload carries its
//! `Content-MD5`, so S3 refuses a body damaged on the way. The prefix is
//! listed once the uploads are done: every file must be there at its size.
//!
//! Version skew: a browser that loaded blue's `index.html` asks for blue's
//! assets after the switch, and a bundler that cleans its output directory
//! leaves them out of green's build. [`SiteBucket::carry`] copies blue's
//! content-hashed assets that green lacks into green's prefix, server-side:
//! a hashed name never serves two contents, so carrying one cannot serve
//! anything stale, and pages loaded from blue keep working on green.

use super::{Listed, SiteBucket};
use crate::aws_call;
use crate::ports::{ErrorKind, PortError};
use crate::site::files::{is_hashed, SiteFile};
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::path::Path;

/// Uploads made at once.
const PARALLEL: usize = 8;

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// Files uploaded (new or changed).
    pub uploaded: Vec<String>,
    /// Files already there, byte for byte.
    pub skipped: usize,
    /// Bytes uploaded.
    pub bytes: u64,
}

impl SiteBucket {
    /// Upload `files` of the build in `dir` to `revision`'s prefix, with
    /// their content types and cache headers; skip those already there;
    /// then list the prefix and check every file is there at its size.
    pub async fn publish(
        &self,
        dir: &Path,
        files: &[SiteFile],
        revision: &str,
    ) -> Result<Published, PortError> {
        let prefix = self.revision_prefix(revision);
        let there = self.list(&prefix).await?;
        // The futures made before they are streamed: a closure in the
        // stream's type would make the caller's future not `Send` (the
        // compiler cannot prove it for every lifetime of its argument).
        let uploads: Vec<_> = files
            .iter()
            .map(|f| self.upload_one(dir, f, &prefix, there.get(&format!("{prefix}{}", f.path))))
            .collect();
        let results: Vec<Option<(String, u64)>> = futures::stream::iter(uploads)
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let mut published = Published::default();
        for r in results {
            match r {
                Some((path, size)) => {
                    published.uploaded.push(path);
                    published.bytes += size;
                }
                None => published.skipped += 1,
            }
        }
        published.uploaded.sort();
        self.verify(files, &prefix).await?;
        Ok(published)
    }

    /// Upload one file unless `there` already holds its bytes: the path and
    /// size uploaded, or `None` when skipped.
    async fn upload_one(
        &self,
        dir: &Path,
        file: &SiteFile,
        prefix: &str,
        there: Option<&Listed>,
    ) -> Result<Option<(String, u64)>, PortError> {
        let local = dir.join(&file.path);
        let bytes = tokio::fs::read(&local).await.map_err(|e| {
            PortError::new(
                "site.read",
                ErrorKind::Invalid,
                format!("{}: {e}", local.display()),
            )
        })?;
        let md5 = Md5::digest(&bytes);
        let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        if there.is_some_and(|t| t.size == bytes.len() as u64 && t.etag == hex) {
            return Ok(None);
        }
        let size = bytes.len() as u64;
        aws_call!(
            self.calls,
            "PutObject",
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(format!("{prefix}{}", file.path))
                .content_type(&file.content_type)
                .cache_control(file.cache_control)
                .content_md5(aws_smithy_types::base64::encode(md5))
                .body(bytes.into())
                .send()
        )?;
        Ok(Some((file.path.clone(), size)))
    }

    /// Every file of the build is under `prefix` at its size.
    async fn verify(&self, files: &[SiteFile], prefix: &str) -> Result<(), PortError> {
        let listed = self.list(prefix).await?;
        let wrong: Vec<&str> = files
            .iter()
            .filter(|f| {
                listed
                    .get(&format!("{prefix}{}", f.path))
                    .is_none_or(|o| o.size != f.size)
            })
            .map(|f| f.path.as_str())
            .collect();
        match wrong.is_empty() {
            true => Ok(()),
            false => Err(PortError::new(
                "ListObjectsV2",
                ErrorKind::Transient,
                format!(
                    "s3://{}/{prefix}: after the upload, {} file(s) missing or of another size: {}",
                    self.bucket,
                    wrong.len(),
                    wrong.join(", ")
                ),
            )),
        }
    }

    /// Copy `from`'s content-hashed assets that `files` (green's build)
    /// lacks into `to`'s prefix, server-side, headers and all; the paths
    /// carried. An object of `to` already there is left as it is.
    pub async fn carry(
        &self,
        from: &str,
        to: &str,
        files: &[SiteFile],
    ) -> Result<Vec<String>, PortError> {
        let (from_prefix, to_prefix) = (self.revision_prefix(from), self.revision_prefix(to));
        let old = self.list(&from_prefix).await?;
        let new: BTreeMap<&str, ()> = files.iter().map(|f| (f.path.as_str(), ())).collect();
        let there = self.list(&to_prefix).await?;
        let carry: Vec<String> = old
            .keys()
            .filter_map(|k| k.strip_prefix(&from_prefix))
            .filter(|p| is_hashed(p) && !new.contains_key(p))
            .filter(|p| !there.contains_key(&format!("{to_prefix}{p}")))
            .map(String::from)
            .collect();
        let copies: Vec<_> = carry
            .iter()
            .map(|p| {
                let (key, source) = (
                    format!("{to_prefix}{p}"),
                    copy_source(&self.bucket, &format!("{from_prefix}{p}")),
                );
                async move {
                    aws_call!(
                        self.calls,
                        "CopyObject",
                        self.client
                            .copy_object()
                            .bucket(&self.bucket)
                            .key(key)
                            .copy_source(source)
                            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy)
                            .send()
                    )
                }
            })
            .collect();
        futures::stream::iter(copies)
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(carry)
    }
}

/// `CopyObject`'s `x-amz-copy-source`: `bucket/key`, the key URL-encoded
/// (the API reference: "The value must be URL-encoded").
fn copy_source(bucket: &str, key: &str) -> String {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{bucket}/{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_source_encodes_all_but_the_unreserved_and_slashes() {
        assert_eq!(
            copy_source("b", "site/v1/assets/app 1+2.js"),
            "b/site/v1/assets/app%201%2B2.js"
        );
    }
}
