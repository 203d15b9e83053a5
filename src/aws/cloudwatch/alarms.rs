//! The CloudWatch alarm gate: every configured alarm read with one batched
//! `DescribeAlarms` call per poll (up to 100 names a call; config allows 100).
//!
//! In a release, every member's gate reads through one [`AlarmBook`]: a read
//! within `fresh` of the last one is answered from it, and a read past that
//! reads every member's alarms at once (100 names a call). So a release's
//! alarm reads cost at most `ceil(names / 100)` calls per `fresh`, however
//! many services it has, and a reading is at most `fresh` old.

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::config::MAX_ALARMS;
use crate::model::{GateReading, GateState, Millis};
use crate::ports::{Gate, PortError};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_cloudwatch::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The alarm gate.
#[derive(Debug, Clone)]
pub struct AlarmGate {
    client: Client,
    calls: Arc<ApiCalls>,
    alarms: Vec<String>,
    book: Option<Arc<AlarmBook>>,
}

/// Alarm readings shared by every gate of one process (a release's members).
#[derive(Debug)]
pub struct AlarmBook {
    fresh: Duration,
    /// Every name any gate has asked for: each refresh reads them all.
    /// Apart from the book, so that gates asking while a refresh is under
    /// way are in the next one.
    names: std::sync::Mutex<BTreeSet<String>>,
    book: tokio::sync::Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    /// The names the last refresh read, and when.
    read: BTreeSet<String>,
    read_at: Option<tokio::time::Instant>,
    readings: BTreeMap<String, GateReading>,
}

impl AlarmBook {
    /// A book whose readings serve for `fresh` after they were read.
    pub fn new(fresh: Duration) -> AlarmBook {
        AlarmBook {
            fresh,
            names: std::sync::Mutex::default(),
            book: tokio::sync::Mutex::default(),
        }
    }

    /// The readings of `names`, read through `gate` unless the book holds
    /// all of them from a read within `fresh`. One refresh at a time: gates
    /// that ask meanwhile wait for it and take its answer.
    async fn read(
        &self,
        gate: &AlarmGate,
        names: &[String],
    ) -> Result<Vec<GateReading>, PortError> {
        self.names
            .lock()
            .expect("alarm names")
            .extend(names.iter().cloned());
        let mut b = self.book.lock().await;
        let known = names.iter().all(|n| b.read.contains(n));
        let recent = b.read_at.is_some_and(|t| t.elapsed() <= self.fresh);
        if !(known && recent) {
            let all: Vec<String> = self
                .names
                .lock()
                .expect("alarm names")
                .iter()
                .cloned()
                .collect();
            let mut readings = BTreeMap::new();
            for chunk in all.chunks(MAX_ALARMS) {
                for r in gate.describe(chunk.to_vec()).await? {
                    readings.insert(r.name.clone(), r);
                }
            }
            b.readings = readings;
            b.read = all.into_iter().collect();
            b.read_at = Some(tokio::time::Instant::now());
        }
        Ok(names
            .iter()
            .filter_map(|n| b.readings.get(n).cloned())
            .collect())
    }
}

impl AlarmGate {
    /// A gate over these alarm names (metric or composite alarms).
    pub fn new(aws: &Aws, alarms: Vec<String>) -> AlarmGate {
        assert!(
            alarms.len() <= MAX_ALARMS,
            "config validation caps alarms at {MAX_ALARMS}"
        );
        AlarmGate {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            alarms,
            book: aws.alarm_book.clone(),
        }
    }

    /// One `DescribeAlarms` of at most 100 `names`.
    async fn describe(&self, names: Vec<String>) -> Result<Vec<GateReading>, PortError> {
        let out = aws_call!(
            self.calls,
            "DescribeAlarms",
            self.client
                .describe_alarms()
                .set_alarm_names(Some(names))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(MAX_ALARMS as i32)
                .send()
        )?;
        let metric = out.metric_alarms().iter().map(|a| {
            (
                a.alarm_name(),
                a.state_value(),
                a.state_reason(),
                a.state_updated_timestamp(),
            )
        });
        let composite = out.composite_alarms().iter().map(|a| {
            (
                a.alarm_name(),
                a.state_value(),
                a.state_reason(),
                a.state_updated_timestamp(),
            )
        });
        Ok(metric
            .chain(composite)
            .filter_map(|(name, value, reason, since)| {
                Some(GateReading {
                    name: name?.to_string(),
                    state: state(value),
                    reason: reason.unwrap_or_default().to_string(),
                    since: millis(since),
                })
            })
            .collect())
    }
}

fn state(v: Option<&StateValue>) -> GateState {
    match v {
        Some(StateValue::Ok) => GateState::Ok,
        Some(StateValue::Alarm) => GateState::Alarm,
        _ => GateState::InsufficientData,
    }
}

fn millis(t: Option<&aws_smithy_types::DateTime>) -> Millis {
    t.and_then(|t| t.to_millis().ok())
        .map_or(0, |m| m.max(0) as Millis)
}

#[async_trait]
impl Gate for AlarmGate {
    async fn read(&self) -> Result<Vec<GateReading>, PortError> {
        if self.alarms.is_empty() {
            return Ok(vec![]);
        }
        // The gates never wait for the rate limit (their bucket has room:
        // one read a poll however many services share it).
        crate::ports::urgent(async {
            match &self.book {
                Some(book) => book.read(self, &self.alarms).await,
                None => self.describe(self.alarms.clone()).await,
            }
        })
        .await
    }
}
