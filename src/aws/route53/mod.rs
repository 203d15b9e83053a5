//! The Route 53 router and ledger.
//!
//! Router: two weighted records (set identifiers = slots A, B) of one name and
//! type. Route 53 weights are 0..=255 and relative; teal maps percentages onto
//! them so that what it writes reads back as the same percentage, and never
//! sets both to 0 (Route 53 would then split evenly). Each change waits for
//! `INSYNC`. Every other field of the records (TTL, values or alias, health
//! check) is kept.
//!
//! Ledger: a TXT record `_teal.NAME` beside the weighted records, holding the
//! deployment record as base64 in 255-character strings. A store replaces it
//! with DELETE (of the exact value read) + CREATE in one change batch, which
//! Route 53 applies atomically and refuses when the value changed meanwhile:
//! a true compare-and-set.

mod ledger;
mod router;

pub use ledger::TxtLedger;
pub use router::Route53Router;

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::engine::Record;
use crate::model::{Slot, SlotWeights};
use crate::ports::{Checks, ErrorKind, Ledger, PortError, Router};
use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use std::sync::Arc;
use std::time::Duration;

/// Route 53's largest weight.
const MAX_WEIGHT: i64 = 255;

/// Percent → Route 53 weight.
pub fn to_r53(percent: u8) -> i64 {
    (i64::from(percent) * MAX_WEIGHT + 50) / 100
}

/// Route 53 weights → percent for slot A.
pub fn from_r53(a: i64, b: i64) -> Option<u8> {
    let total = a + b;
    (total > 0).then(|| ((a * 100 + total / 2) / total) as u8)
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// Shared by router and ledger: one zone, one client.
#[derive(Debug, Clone)]
struct Zone {
    client: Client,
    calls: Arc<ApiCalls>,
    zone: String,
}

impl Zone {
    /// Record sets of `name` and `rtype` (all set identifiers).
    async fn records(
        &self,
        name: &str,
        rtype: &RrType,
    ) -> Result<Vec<ResourceRecordSet>, PortError> {
        let out = aws_call!(
            self.calls,
            "ListResourceRecordSets",
            self.client
                .list_resource_record_sets()
                .hosted_zone_id(&self.zone)
                .start_record_name(name)
                .start_record_type(rtype.clone())
                .max_items(100)
                .send()
        )
        .map_err(|mut e| {
            if e.message.contains("NoSuchHostedZone") {
                e.message = format!(
                    "router.hosted_zone_id: Route 53 has no hosted zone {:?} ({})",
                    self.zone, e.message
                );
            }
            e
        })?;
        Ok(out
            .resource_record_sets()
            .iter()
            .filter(|r| r.name == name && &r.r#type == rtype)
            .cloned()
            .collect())
    }

    /// Apply changes atomically and wait until they are in sync.
    async fn change(&self, changes: Vec<Change>) -> Result<(), PortError> {
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .build()
            .map_err(|e| {
                PortError::new(
                    "ChangeResourceRecordSets",
                    ErrorKind::Invalid,
                    e.to_string(),
                )
            })?;
        let out = aws_call!(
            self.calls,
            "ChangeResourceRecordSets",
            self.client
                .change_resource_record_sets()
                .hosted_zone_id(&self.zone)
                .change_batch(batch)
                .send()
        )?;
        let mut info = out.change_info().cloned();
        for _ in 0..120 {
            match &info {
                Some(i) if i.status() == &ChangeStatus::Pending => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let id = i.id().to_string();
                    let got = aws_call!(
                        self.calls,
                        "GetChange",
                        self.client.get_change().id(id).send()
                    )?;
                    info = got.change_info().cloned();
                }
                _ => return Ok(()),
            }
        }
        Err(PortError::new(
            "GetChange",
            ErrorKind::Transient,
            "the change stayed PENDING for a minute",
        ))
    }
}

fn change(action: ChangeAction, rrs: ResourceRecordSet) -> Result<Change, PortError> {
    Change::builder()
        .action(action)
        .resource_record_set(rrs)
        .build()
        .map_err(|e| {
            PortError::new(
                "ChangeResourceRecordSets",
                ErrorKind::Invalid,
                e.to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_percentage_round_trips_through_route53_weights() {
        for p in 0..=100u8 {
            let (a, b) = (to_r53(p), to_r53(100 - p));
            assert!(a + b > 0 && a <= MAX_WEIGHT && b <= MAX_WEIGHT);
            assert_eq!(from_r53(a, b), Some(p), "{p}% → {a}/{b}");
        }
        assert_eq!(from_r53(0, 0), None, "both 0 is not a valid split");
    }
}
