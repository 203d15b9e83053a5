//! Old revisions deleted past a count, so a bucket does not grow with every
//! deployment, while the ones a rollback may need stay.
//!
//! Revisions are ordered by their newest object (the last upload or carry
//! into them). The newest `keep` stay, and so does every protected one
//! whatever its age: blue and green of the deployment under way, and any
//! revision a distribution's origin points at.

use super::SiteBucket;
use crate::aws_call;
use crate::ports::{ErrorKind, PortError};
use std::collections::BTreeMap;

/// Keys one `DeleteObjects` call takes (the API reference: up to 1,000).
const DELETE_BATCH: usize = 1000;

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// The revisions kept, newest first.
    pub kept: Vec<String>,
    /// The revisions deleted, newest first.
    pub deleted: Vec<String>,
    /// Objects deleted.
    pub objects: usize,
}

impl SiteBucket {
    /// Every revision under the site's prefix, newest first, with its keys.
    pub async fn revisions(&self) -> Result<Vec<(String, Vec<String>)>, PortError> {
        let root = match self.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.prefix),
        };
        let mut by: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for (key, o) in self.list(&root).await? {
            let Some((revision, _)) = key[root.len()..].split_once('/') else {
                continue;
            };
            // teal's own keys (the slots'), never a revision.
            if revision.starts_with('.') {
                continue;
            }
            let e = by.entry(revision.to_string()).or_default();
            e.0 = e.0.max(o.modified);
            e.1.push(key);
        }
        let mut all: Vec<_> = by.into_iter().collect();
        all.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
        Ok(all.into_iter().map(|(r, (_, keys))| (r, keys)).collect())
    }

    /// Delete every revision but the newest `keep`, the `protected` and
    /// those a deployment's slot holds (a distribution serves them).
    pub async fn prune(&self, keep: usize, protected: &[&str]) -> Result<Pruned, PortError> {
        let mut pruned = Pruned::default();
        let mut doomed = vec![];
        let slots = self.slot_revisions().await?;
        let in_slot = |r: &str| slots.iter().flatten().any(|s| s == r);
        for (i, (revision, keys)) in self.revisions().await?.into_iter().enumerate() {
            match i < keep || protected.contains(&revision.as_str()) || in_slot(&revision) {
                true => pruned.kept.push(revision),
                false => {
                    pruned.deleted.push(revision);
                    doomed.extend(keys);
                }
            }
        }
        self.delete(&doomed).await?;
        pruned.objects = doomed.len();
        Ok(pruned)
    }

    /// Delete `keys` (`DeleteObjects`, a thousand a call); a key already
    /// gone is not an error.
    pub async fn delete(&self, keys: &[String]) -> Result<(), PortError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(k)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PortError::new("DeleteObjects", ErrorKind::Invalid, e.to_string()))?;
            let delete = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| PortError::new("DeleteObjects", ErrorKind::Invalid, e.to_string()))?;
            let out = aws_call!(
                self.calls,
                "DeleteObjects",
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
            )?;
            if let Some(e) = out.errors().first() {
                return Err(PortError::new(
                    "DeleteObjects",
                    ErrorKind::Transient,
                    format!(
                        "s3://{}/{}: {} of {} not deleted: {}",
                        self.bucket,
                        e.key().unwrap_or_default(),
                        out.errors().len(),
                        batch.len(),
                        e.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}
