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

use super::{ApiCalls, Aws};
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

/// The Route 53 router.
#[derive(Debug, Clone)]
pub struct Route53Router {
    zone: Zone,
    name: String,
    rtype: RrType,
    ids: [String; 2],
}

impl Route53Router {
    /// A router over the weighted records `ids` (slot A, B) of `name`/`rtype` in `zone`.
    pub fn new(
        aws: &Aws,
        zone: String,
        name: &str,
        rtype: &str,
        ids: [String; 2],
    ) -> Route53Router {
        Route53Router {
            zone: Zone {
                client: Client::new(&aws.sdk),
                calls: aws.calls.clone(),
                zone,
            },
            name: fqdn(name),
            rtype: RrType::from(rtype),
            ids,
        }
    }

    /// The two slot records, A then B.
    async fn slots(&self) -> Result<[ResourceRecordSet; 2], PortError> {
        let records = self.zone.records(&self.name, &self.rtype).await?;
        let find = |id: &str| {
            records
                .iter()
                .find(|r| r.set_identifier.as_deref() == Some(id))
                .cloned()
                .ok_or_else(|| {
                    PortError::new(
                        "ListResourceRecordSets",
                        ErrorKind::NotFound,
                        format!(
                            "no weighted {} record {} with set identifier {id:?} in zone {}",
                            self.rtype, self.name, self.zone.zone
                        ),
                    )
                })
        };
        Ok([find(&self.ids[0])?, find(&self.ids[1])?])
    }
}

#[async_trait]
impl Router for Route53Router {
    async fn preflight(&self, plan: &crate::engine::Plan) -> Checks {
        match self.slots().await {
            Ok([a, b]) if a.weight.is_none() || b.weight.is_none() => {
                Checks::problems(vec![format!(
                    "router: the records {} are not weighted records",
                    self.name
                )])
            }
            Ok(records) => {
                // Resolvers cache answers for the TTL: a shorter bake judges
                // green on traffic that mostly never reached it.
                let ttl_ms = records
                    .iter()
                    .filter_map(|r| r.ttl)
                    .max()
                    .unwrap_or(0)
                    .max(0) as u64
                    * 1000;
                let shortest = plan
                    .steps
                    .iter()
                    .filter(|s| s.weight < 100)
                    .map(|s| s.bake_ms)
                    .min();
                let warnings = match shortest {
                    Some(bake) if bake < ttl_ms => vec![format!(
                        "a bake of {} is shorter than the TTL of {} ({}): clients keep the old answer that long",
                        crate::model::fmt_ms(bake),
                        self.name,
                        crate::model::fmt_ms(ttl_ms)
                    )],
                    _ => vec![],
                };
                Checks {
                    problems: vec![],
                    warnings,
                }
            }
            Err(e) if e.message.starts_with("router.") => Checks::problems(vec![e.message]),
            Err(e) => Checks::problems(vec![format!("router.set_identifiers: {}", e.message)]),
        }
    }

    async fn weights(&self) -> Result<SlotWeights, PortError> {
        let [a, b] = self.slots().await?;
        let a_pct = from_r53(a.weight.unwrap_or(0), b.weight.unwrap_or(0)).ok_or_else(|| {
            PortError::new(
                "router.weights",
                ErrorKind::Invalid,
                format!("both records of {} have weight 0", self.name),
            )
        })?;
        Ok(SlotWeights {
            a: a_pct,
            b: 100 - a_pct,
        })
    }

    async fn set_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        if !w.is_valid() {
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Invalid,
                format!("invalid weights {w}"),
            ));
        }
        let records = self.slots().await?;
        let changes = Slot::BOTH
            .into_iter()
            .map(|s| {
                let mut r = records[s.index()].clone();
                r.weight = Some(to_r53(w.get(s)));
                change(ChangeAction::Upsert, r)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.zone.change(changes).await
    }
}

/// The ledger in a TXT record beside the weighted records.
#[derive(Debug, Clone)]
pub struct TxtLedger {
    zone: Zone,
    name: String,
}

impl TxtLedger {
    /// A ledger at `_teal.NAME` in `zone`.
    pub fn new(aws: &Aws, zone: String, record_name: &str) -> TxtLedger {
        TxtLedger {
            zone: Zone {
                client: Client::new(&aws.sdk),
                calls: aws.calls.clone(),
                zone,
            },
            name: fqdn(&format!("_teal.{}", record_name.trim_end_matches('.'))),
        }
    }

    async fn current(&self) -> Result<Option<ResourceRecordSet>, PortError> {
        Ok(self
            .zone
            .records(&self.name, &RrType::Txt)
            .await?
            .into_iter()
            .next())
    }
}

fn decode(rrs: &ResourceRecordSet) -> Result<Record, PortError> {
    let corrupt = |m: String| PortError::new("ledger.load", ErrorKind::Invalid, m);
    let strings: Vec<String> = rrs
        .resource_records()
        .first()
        .map(|r| {
            r.value()
                .split('"')
                .filter(|s| !s.trim().is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let (head, chunks) = strings
        .split_first()
        .ok_or_else(|| corrupt("empty ledger record".into()))?;
    let version: u64 = head
        .strip_prefix("teal v=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(format!("bad ledger header {head:?}")))?;
    let mut rec = Record::unpack(&chunks.concat()).map_err(corrupt)?;
    rec.version = version;
    Ok(rec)
}

fn encode(name: &str, rec: &Record, version: u64) -> Result<ResourceRecordSet, PortError> {
    let b64 = rec.pack();
    let mut value = format!("\"teal v={version}\"");
    for chunk in b64.as_bytes().chunks(255) {
        value.push_str(&format!(
            " \"{}\"",
            std::str::from_utf8(chunk).expect("base64 is ASCII")
        ));
    }
    let invalid = |e: aws_smithy_types::error::operation::BuildError| {
        PortError::new("ledger.store", ErrorKind::Invalid, e.to_string())
    };
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Txt)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(invalid)?,
        )
        .build()
        .map_err(invalid)
}

#[async_trait]
impl Ledger for TxtLedger {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        self.current().await?.as_ref().map(decode).transpose()
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        let current = self.current().await?;
        let version = match &current {
            Some(rrs) => decode(rrs)?.version,
            None => 0,
        };
        if version != record.version {
            return Err(PortError::new(
                "ledger.store",
                ErrorKind::Conflict,
                format!("record is at version {version}, not {}", record.version),
            ));
        }
        let next = version + 1;
        let mut changes = Vec::new();
        if let Some(old) = current {
            // Deleting the exact value read makes the batch fail if it changed meanwhile.
            changes.push(change(ChangeAction::Delete, old)?);
        }
        changes.push(change(
            ChangeAction::Create,
            encode(&self.name, record, next)?,
        )?);
        match self.zone.change(changes).await {
            Ok(()) => Ok(next),
            Err(e)
                if e.kind == ErrorKind::Invalid
                    && (e.message.contains("InvalidChangeBatch")
                        || e.message.contains("not found")) =>
            {
                Err(PortError::new(
                    "ledger.store",
                    ErrorKind::Conflict,
                    format!("the ledger record changed meanwhile ({})", e.message),
                ))
            }
            Err(e) => Err(e),
        }
    }
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
