//! A static site as a fleet: each slot is one revision's prefix.
//!
//! Which revision a slot holds is written in the bucket itself, as an empty
//! object per slot whose key names it and when it was written:
//! `PREFIX/.teal-slots/a/v2@1796350000123`. One `ListObjectsV2` reads both
//! slots; a slot is moved by writing its new key and then deleting the old
//! ones, so a crash in between leaves two keys, and the newest stamp is the
//! slot's. The stamp is in the key because S3's `LastModified` has whole
//! seconds, and a slot can be written twice in one (blue's revision adopted
//! right after green is provisioned); a new stamp is past every stamp the
//! slot has, whatever the writer's clock. The router (CloudFront) reads the
//! same keys to tell which slot a distribution's origin path serves.
//!
//! Provisioning green uploads the build ([`SiteBucket::publish`], idempotent)
//! and carries blue's content-hashed assets into green's prefix (version
//! skew); retiring a slot only clears its key: the revision's objects stay
//! for a rollback, and `teal site publish --keep` prunes them.
//!
//! Before teal's first deployment no slot has a key: the revision the
//! distribution serves is blue's, and slot A is its slot. Provisioning green
//! then marks slot A [`BEFORE_TEAL`] (its revision not known to the bucket),
//! until the router, which reads what the distribution serves, writes it.
//!
//! A revision is a prefix, so green can never be the revision blue serves:
//! both sides would be one prefix and the router could not tell them
//! apart. The preflight refuses it, asking the distribution ([`Served`])
//! what blue is when no slot says so yet.

use super::{valid_revision, SiteBucket};
use crate::aws_call;
use crate::engine::Plan;
use crate::model::{FleetStatus, Green, Slot};
use crate::ports::{Checks, ErrorKind, Fleet, PortError};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the slots' keys live, under the site's prefix. A leading dot keeps
/// it out of any revision's name ([`valid_revision`] refuses one).
const SLOTS_DIR: &str = ".teal-slots";

/// The revision of a slot that holds what the distribution served before
/// teal's first deployment, not yet read from it. A leading dot: never a
/// revision's name.
pub const BEFORE_TEAL: &str = ".before-teal";

/// The revision of each slot, A then B, as the bucket says.
pub type SlotRevisions = [Option<String>; 2];

/// When a slot key was written: its stamp (`a/v2@1796350000123`), or for a
/// key without one (written before stamps) its `LastModified`.
fn stamp_of(key: &str, o: &super::Listed) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    match name.rsplit_once('@') {
        Some((_, stamp)) => stamp.parse().ok(),
        None => Some(o.modified),
    }
}

/// Each slot's newest key under `dir`, as (stamp, revision).
fn newest(
    dir: &str,
    listed: &std::collections::BTreeMap<String, super::Listed>,
) -> [Option<(u64, String)>; 2] {
    let mut newest: [Option<(u64, String)>; 2] = [None, None];
    for (key, o) in listed {
        let Some((slot, name)) = key.strip_prefix(dir).and_then(|r| r.split_once('/')) else {
            continue;
        };
        let slot = match slot {
            "a" => Slot::A,
            "b" => Slot::B,
            _ => continue,
        };
        let (Some(stamp), revision) = (
            stamp_of(key, o),
            name.rsplit_once('@').map_or(name, |(r, _)| r),
        ) else {
            continue;
        };
        let held = &mut newest[slot.index()];
        if held.as_ref().is_none_or(|(t, _)| stamp > *t) {
            *held = Some((stamp, revision.to_string()));
        }
    }
    newest
}

impl SiteBucket {
    fn slots_prefix(&self) -> String {
        self.revision_prefix(SLOTS_DIR)
    }

    /// The revision each slot holds (`None`: no key).
    pub async fn slot_revisions(&self) -> Result<SlotRevisions, PortError> {
        let listed = self.list(&self.slots_prefix()).await?;
        Ok(newest(&self.slots_prefix(), &listed).map(|n| n.map(|(_, r)| r)))
    }

    /// Record that `slot` holds `revision` (`None`: nothing).
    pub async fn set_slot(&self, slot: Slot, revision: Option<&str>) -> Result<(), PortError> {
        let dir = format!("{}{slot}/", self.slots_prefix());
        let old = self.list(&dir).await?;
        if let Some(r) = revision {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let last = old.iter().filter_map(|(k, o)| stamp_of(k, o)).max();
            let stamp = last.map_or(now, |l| now.max(l + 1));
            aws_call!(
                self.calls,
                "PutObject",
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(format!("{dir}{r}@{stamp}"))
                    .body(Vec::new().into())
                    .send()
            )?;
        }
        self.delete(&old.into_keys().collect::<Vec<_>>()).await
    }

    /// Whether `key` exists (`HeadObject`).
    pub async fn exists(&self, key: &str) -> Result<bool, PortError> {
        match aws_call!(
            self.calls,
            "HeadObject",
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The origin path a CloudFront origin gives to serve `revision`
    /// (`/site/v2`: a leading slash, no trailing one).
    pub fn origin_path(&self, revision: &str) -> String {
        format!("/{}", self.revision_prefix(revision).trim_end_matches('/'))
    }

    /// The revision an origin path serves, if it is one of this site's.
    pub fn revision_at(&self, origin_path: &str) -> Option<String> {
        let path = origin_path.trim_matches('/');
        let r = match self.prefix.is_empty() {
            true => path,
            false => path.strip_prefix(&self.prefix)?.strip_prefix('/')?,
        };
        valid_revision(r).then(|| r.to_string())
    }
}

/// What serves the site to viewers (a CloudFront distribution), asked which
/// of the site's revisions it serves: blue's, before teal has recorded any.
#[async_trait]
pub trait Served: Send + Sync + std::fmt::Debug {
    /// The revision whose prefix is served (`None`: a path that is none).
    async fn served_revision(&self) -> Result<Option<String>, PortError>;
}

/// The S3 fleet: `fleet.site` uploaded to a revision's prefix per slot.
#[derive(Debug, Clone)]
pub struct S3Fleet {
    bucket: SiteBucket,
    /// The build directory, `{revision}` replaced.
    site: String,
    /// What the viewers' distribution serves, for blue before teal.
    served: Option<Arc<dyn Served>>,
}

impl S3Fleet {
    /// The fleet of the site whose revisions are under `bucket`, built into `site`.
    pub fn new(bucket: SiteBucket, site: String) -> S3Fleet {
        S3Fleet {
            bucket,
            site,
            served: None,
        }
    }

    /// Ask `served` what blue is while no slot is recorded.
    pub fn serving(mut self, served: Arc<dyn Served>) -> S3Fleet {
        self.served = Some(served);
        self
    }

    /// Which side already holds `revision`: a slot whose key names it, or,
    /// before teal has recorded any slot, the distribution serving it.
    async fn holding(&self, revision: &str) -> Result<Option<String>, PortError> {
        let revisions = self.bucket.slot_revisions().await?;
        if let Some(slot) = Slot::BOTH
            .into_iter()
            .find(|s| revisions[s.index()].as_deref() == Some(revision))
        {
            return Ok(Some(format!("slot {slot} holds it")));
        }
        let recorded = revisions
            .iter()
            .flatten()
            .any(|r| r.as_str() != BEFORE_TEAL);
        match (&self.served, recorded) {
            (Some(served), false) => Ok(served
                .served_revision()
                .await?
                .filter(|r| r == revision)
                .map(|_| "the distribution serves it as blue".to_string())),
            _ => Ok(None),
        }
    }

    fn dir(&self, revision: &str) -> PathBuf {
        self.site.replace("{revision}", revision).into()
    }

    /// A slot's status from the slots' revisions.
    async fn status_of(
        &self,
        revisions: &SlotRevisions,
        slot: Slot,
    ) -> Result<FleetStatus, PortError> {
        match &revisions[slot.index()] {
            Some(r) if r == BEFORE_TEAL => Ok(FleetStatus {
                exists: true,
                revision: None,
                desired: 1,
                healthy: 1,
                name: None,
            }),
            Some(r) => {
                // The entry document is what a viewer asks for first.
                let ready = self
                    .bucket
                    .exists(&format!("{}index.html", self.bucket.revision_prefix(r)))
                    .await?;
                Ok(FleetStatus {
                    exists: true,
                    revision: Some(r.clone()),
                    desired: 1,
                    healthy: u32::from(ready),
                    name: Some(self.bucket.origin_path(r)),
                })
            }
            // Blue before teal's first deployment: whatever the
            // distribution serves, in slot A, its revision unknown.
            None if slot == Slot::A && revisions.iter().all(Option::is_none) => Ok(FleetStatus {
                exists: true,
                revision: None,
                desired: 1,
                healthy: 1,
                name: None,
            }),
            None => Ok(FleetStatus::absent()),
        }
    }
}

#[async_trait]
impl Fleet for S3Fleet {
    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError> {
        let revisions = self.bucket.slot_revisions().await?;
        self.status_of(&revisions, slot).await
    }

    async fn statuses(&self) -> Result<[FleetStatus; 2], PortError> {
        let revisions = self.bucket.slot_revisions().await?;
        Ok([
            self.status_of(&revisions, Slot::A).await?,
            self.status_of(&revisions, Slot::B).await?,
        ])
    }

    async fn provision(&self, slot: Slot, green: &Green, _desired: u32) -> Result<(), PortError> {
        let dir = self.dir(&green.revision);
        let files = crate::site::files::scan(&dir).map_err(|e| {
            PortError::new(
                "fleet.provision",
                ErrorKind::Invalid,
                format!("fleet.site: {e}"),
            )
        })?;
        let revisions = self.bucket.slot_revisions().await?;
        match &revisions[slot.index()] {
            Some(r) if r != &green.revision => {
                return Err(PortError::new(
                    "fleet.provision",
                    ErrorKind::Invalid,
                    format!("slot {slot} already holds revision {r}"),
                ))
            }
            _ => {}
        }
        if revisions.iter().all(Option::is_none) {
            // Blue is what the distribution serves: keep it a slot of its own.
            self.bucket
                .set_slot(slot.other(), Some(BEFORE_TEAL))
                .await?;
        }
        self.bucket.publish(&dir, &files, &green.revision).await?;
        if let Some(blue) = &revisions[slot.other().index()] {
            if blue != &green.revision && blue != BEFORE_TEAL {
                self.bucket.carry(blue, &green.revision, &files).await?;
            }
        }
        self.bucket.set_slot(slot, Some(&green.revision)).await
    }

    async fn remove(&self, slot: Slot) -> Result<(), PortError> {
        self.bucket.set_slot(slot, None).await
    }

    async fn preflight(&self, _plan: &Plan, green: &Green) -> Checks {
        let mut problems = Vec::new();
        if !valid_revision(&green.revision) {
            problems.push(format!(
                "--revision {:?}: a static site's revision names one prefix: letters, digits \
                 and -_.+ only, not starting with '.'",
                green.revision
            ));
        } else if let Err(e) = crate::site::files::scan(&self.dir(&green.revision)) {
            problems.push(format!("fleet.site: {e}"));
        }
        match self.bucket.check().await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Checks::unread(e),
            Err(e) => {
                problems.push(format!("fleet.bucket: {}", e.message));
                return Checks::problems(problems);
            }
        }
        match self.holding(&green.revision).await {
            Ok(None) => {}
            Ok(Some(side)) => problems.push(format!(
                "--revision {}: {side} (s3://{}/{}); a static site's revision is its prefix, \
                 so green must be a new one: publish the build under a new revision",
                green.revision,
                self.bucket.bucket,
                self.bucket.revision_prefix(&green.revision)
            )),
            Err(e) if e.is_transient() => return Checks::unread(e),
            // The distribution's own checks name what is wrong with it.
            Err(_) => {}
        }
        Checks::problems(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::s3::Listed;
    use std::collections::BTreeMap;

    fn listed(keys: &[(&str, u64)]) -> BTreeMap<String, Listed> {
        keys.iter()
            .map(|(k, modified)| {
                let o = Listed {
                    size: 0,
                    etag: String::new(),
                    modified: *modified,
                };
                (format!("site/.teal-slots/{k}"), o)
            })
            .collect()
    }

    #[test]
    fn a_slot_written_twice_in_one_second_is_the_later_revision_whatever_the_names_sort() {
        // A crash between writing a slot's new key and deleting its old
        // one, both in the same second as S3 counts: names that sort either
        // way round, the stamp decides.
        for (first, then) in [(".before-teal", "v1"), ("v1", "-hotfix"), ("b", "a")] {
            let keys = listed(&[
                (&format!("a/{first}@1796350000100"), 1_796_350_000_000),
                (&format!("a/{then}@1796350000900"), 1_796_350_000_000),
            ]);
            let slots = newest("site/.teal-slots/", &keys);
            assert_eq!(slots[0].as_ref().map(|(_, r)| r.as_str()), Some(then));
            assert_eq!(slots[1], None);
        }
    }

    #[test]
    fn a_key_from_before_stamps_counts_by_its_last_modified() {
        let keys = listed(&[("b/v1", 1_000), ("b/v2@2000", 0), ("a/v0", 5)]);
        let slots = newest("site/.teal-slots/", &keys);
        assert_eq!(slots[1], Some((2000, "v2".into())));
        assert_eq!(slots[0], Some((5, "v0".into())));
        let keys = listed(&[("b/v1", 3_000), ("b/v2@2000", 0)]);
        assert_eq!(
            newest("site/.teal-slots/", &keys)[1],
            Some((3000, "v1".into()))
        );
    }
}
