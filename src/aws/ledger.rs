//! The cloud ledger on an ALB listener or rule: the deployment record lives in
//! tags on the resource teal already manages, so any machine that can see the
//! router can continue or roll back the deployment.
//!
//! Tag values allow only letters, digits, spaces and `_ . : / = + - @`, and
//! at most 256 characters: the record is JSON, base64-encoded, split across
//! `teal:ledger:0`, `teal:ledger:1`, ... with `teal:ledger` holding
//! `version=N chunks=M`.
//!
//! Tags have no conditional write. A store reads the version first and
//! refuses (`Conflict`) when it moved; two writers racing inside that one
//! read-then-write window are not excluded. The lock's owner in the record,
//! checked on every store, is what keeps a second process out in practice.

use super::{ApiCalls, Aws};
use crate::aws_call;
use crate::engine::Record;
use crate::ports::{ErrorKind, Ledger, PortError};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::Tag;
use aws_sdk_elasticloadbalancingv2::Client;
use std::collections::BTreeMap;
use std::sync::Arc;

const META: &str = "teal:ledger";
const CHUNK: usize = 256;

/// The ledger in an ELBv2 resource's tags.
#[derive(Debug, Clone)]
pub struct TagLedger {
    client: Client,
    calls: Arc<ApiCalls>,
    arn: String,
}

impl TagLedger {
    /// A ledger on the listener or rule `arn`.
    pub fn new(aws: &Aws, arn: String) -> TagLedger {
        TagLedger {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            arn,
        }
    }

    async fn tags(&self) -> Result<BTreeMap<String, String>, PortError> {
        let out = aws_call!(
            self.calls,
            "DescribeTags",
            self.client.describe_tags().resource_arns(&self.arn).send()
        )?;
        Ok(out
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }
}

/// `(version, chunks)` from the meta tag.
fn meta(tags: &BTreeMap<String, String>) -> Option<(u64, usize)> {
    let v = tags.get(META)?;
    let mut version = None;
    let mut chunks = None;
    for part in v.split(' ') {
        match part.split_once('=') {
            Some(("version", n)) => version = n.parse().ok(),
            Some(("chunks", n)) => chunks = n.parse().ok(),
            _ => {}
        }
    }
    Some((version?, chunks?))
}

fn corrupt(m: impl Into<String>) -> PortError {
    PortError::new("ledger.load", ErrorKind::Invalid, m)
}

/// Decode the record held in tags, if any.
pub fn decode(tags: &BTreeMap<String, String>) -> Result<Option<Record>, PortError> {
    let Some((version, chunks)) = meta(tags) else {
        return Ok(None);
    };
    let mut b64 = String::new();
    for i in 0..chunks {
        b64.push_str(
            tags.get(&format!("{META}:{i}"))
                .ok_or_else(|| corrupt(format!("ledger chunk {i} of {chunks} is missing")))?,
        );
    }
    let mut rec = Record::unpack(&b64).map_err(corrupt)?;
    rec.version = version;
    Ok(Some(rec))
}

/// Encode a record at `version` as tags.
pub fn encode(rec: &Record, version: u64) -> Vec<(String, String)> {
    let b64 = rec.pack();
    let chunks: Vec<&str> = b64
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let mut tags = vec![(
        META.to_string(),
        format!("version={version} chunks={}", chunks.len()),
    )];
    tags.extend(
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{META}:{i}"), c.to_string())),
    );
    tags
}

#[async_trait]
impl Ledger for TagLedger {
    async fn load(&self) -> Result<Option<Record>, PortError> {
        decode(&self.tags().await?)
    }

    async fn store(&self, record: &Record) -> Result<u64, PortError> {
        let tags = self.tags().await?;
        let current = meta(&tags).map_or(0, |(v, _)| v);
        if current != record.version {
            return Err(PortError::new(
                "ledger.store",
                ErrorKind::Conflict,
                format!("record is at version {current}, not {}", record.version),
            ));
        }
        let next = current + 1;
        let new = encode(record, next);
        let stale: Vec<String> = tags
            .keys()
            .filter(|k| k.starts_with(&format!("{META}:")) && !new.iter().any(|(n, _)| n == *k))
            .cloned()
            .collect();
        let add: Vec<Tag> = new
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        aws_call!(
            self.calls,
            "AddTags",
            self.client
                .add_tags()
                .resource_arns(&self.arn)
                .set_tags(Some(add))
                .send()
        )?;
        if !stale.is_empty() {
            aws_call!(
                self.calls,
                "RemoveTags",
                self.client
                    .remove_tags()
                    .resource_arns(&self.arn)
                    .set_tag_keys(Some(stale))
                    .send()
            )?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InsufficientData;
    use crate::engine::{Phase, Plan, RECORD_SCHEMA};
    use crate::model::Slot;
    use crate::strategy::expand_linear;

    #[test]
    fn a_record_round_trips_through_tags_that_aws_accepts() {
        let rec = Record {
            schema: RECORD_SCHEMA,
            id: "d-20261122T130000-4f2a".into(),
            service: "checkout".into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            blue_revision: Some(
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/checkout:41".into(),
            ),
            green: Some(
                "image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/checkout:0123456789ab".into(),
            ),
            build: Some(crate::pipeline::Build {
                id: "checkout-deploy:4f2b7c1e-8a5d-4c3b-9e1f-0a2b3c4d5e6f".into(),
                initiator: Some("codepipeline/checkout-release".into()),
            }),
            green_slot: Slot::B,
            plan: Plan {
                strategy: "linear-10-every-1m".into(),
                steps: expand_linear(10, 60_000),
                keep_alive_ms: 300_000,
                poll_ms: 10_000,
                green_healthy_timeout_ms: 600_000,
                insufficient_data: InsufficientData::Ok,
                hooks: crate::hooks::HookPoint::ALL.to_vec(),
                test_traffic: true,
                rolling: None,
            },
            phase: Phase::Shifting {
                step: 3,
                reached: Some(1_795_000_000_000),
            },
            hold: None,
            started_at: 1_795_000_000_000,
            updated_at: 1_795_000_000_000,
            lock: Some(crate::engine::Lock {
                owner: "codebuild:checkout-deploy:7c1d-4b2e".into(),
                expires_at: 1_795_000_300_000,
            }),
            // A queued request and a full set of replies: the largest record.
            inbox: vec![crate::engine::Request {
                id: "r-1a2b3c4d5e6-9f8e7d6c".into(),
                command: crate::engine::Command::Shift {
                    green: 25,
                    ignore_gates: false,
                },
                by: "codebuild:checkout-deploy:0123abcd-4567-89ef".into(),
                at: 1_795_000_000_000,
            }],
            replies: (0..crate::engine::REPLIES_KEPT)
                .map(|i| crate::engine::Reply {
                    id: format!("r-1a2b3c4d5e{i}-9f8e7d6c"),
                    applied: false,
                    message: "cannot promote while the deployment is keep_alive: green already holds 100%; blue is retired after the keep-alive".into(),
                    at: 1_795_000_000_000,
                })
                .collect(),
            // Hooks at every point, passed up to the current step.
            hooks_passed: std::iter::once(crate::hooks::HookRun::at(
                crate::hooks::HookPoint::BeforeTraffic,
            ))
            .chain((0..3).map(crate::hooks::HookRun::after_step))
            .collect(),
            version: 0,
        };
        let tags = encode(&rec, 7);
        // ALB allows 50 tags (moto 10); teal must leave room for the user's own.
        assert!(tags.len() <= 8, "{} tags", tags.len());
        for (k, v) in &tags {
            assert!(k.len() <= 128 && v.len() <= 256);
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c)),
                "{v}"
            );
        }
        let map: BTreeMap<String, String> = tags.into_iter().collect();
        let back = decode(&map).unwrap().unwrap();
        assert_eq!(back, Record { version: 7, ..rec });
    }
}
