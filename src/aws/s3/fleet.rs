//! A static site as a fleet: each slot is one revision's prefix.
//!
//! Which revision a slot holds is written in the bucket itself, as an empty
//! object per slot whose key names it: `PREFIX/.teal-slots/a/v2`. One
//! `ListObjectsV2` reads both slots; a slot is moved by writing its new key
//! and then deleting the old ones, so a crash in between leaves two keys, and
//! the newest is the slot's. The router (CloudFront) reads the same keys to
//! tell which slot a distribution's origin path serves.
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

use super::{valid_revision, SiteBucket};
use crate::aws_call;
use crate::engine::Plan;
use crate::model::{FleetStatus, Green, Slot};
use crate::ports::{Checks, ErrorKind, Fleet, PortError};
use async_trait::async_trait;
use std::path::PathBuf;

/// Where the slots' keys live, under the site's prefix. A leading dot keeps
/// it out of any revision's name ([`valid_revision`] refuses one).
const SLOTS_DIR: &str = ".teal-slots";

/// The revision of a slot that holds what the distribution served before
/// teal's first deployment, not yet read from it. A leading dot: never a
/// revision's name.
pub const BEFORE_TEAL: &str = ".before-teal";

/// The revision of each slot, A then B, as the bucket says.
pub type SlotRevisions = [Option<String>; 2];

impl SiteBucket {
    fn slots_prefix(&self) -> String {
        self.revision_prefix(SLOTS_DIR)
    }

    /// The revision each slot holds (`None`: no key).
    pub async fn slot_revisions(&self) -> Result<SlotRevisions, PortError> {
        let listed = self.list(&self.slots_prefix()).await?;
        let mut newest: [Option<(u64, String)>; 2] = [None, None];
        for (key, o) in &listed {
            let Some((slot, revision)) = key
                .strip_prefix(&self.slots_prefix())
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            let slot = match slot {
                "a" => Slot::A,
                "b" => Slot::B,
                _ => continue,
            };
            let held = &mut newest[slot.index()];
            if held.as_ref().is_none_or(|(t, _)| o.modified >= *t) {
                *held = Some((o.modified, revision.to_string()));
            }
        }
        Ok(newest.map(|n| n.map(|(_, r)| r)))
    }

    /// Record that `slot` holds `revision` (`None`: nothing).
    pub async fn set_slot(&self, slot: Slot, revision: Option<&str>) -> Result<(), PortError> {
        let dir = format!("{}{slot}/", self.slots_prefix());
        let keep = revision.map(|r| format!("{dir}{r}"));
        if let Some(key) = &keep {
            aws_call!(
                self.calls,
                "PutObject",
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(Vec::new().into())
                    .send()
            )?;
        }
        let stale: Vec<String> = self
            .list(&dir)
            .await?
            .into_keys()
            .filter(|k| Some(k) != keep.as_ref())
            .collect();
        self.delete(&stale).await
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

/// The S3 fleet: `fleet.site` uploaded to a revision's prefix per slot.
#[derive(Debug, Clone)]
pub struct S3Fleet {
    bucket: SiteBucket,
    /// The build directory, `{revision}` replaced.
    site: String,
}

impl S3Fleet {
    /// The fleet of the site whose revisions are under `bucket`, built into `site`.
    pub fn new(bucket: SiteBucket, site: String) -> S3Fleet {
        S3Fleet { bucket, site }
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
            Err(e) => problems.push(format!("fleet.bucket: {}", e.message)),
        }
        Checks::problems(problems)
    }
}
