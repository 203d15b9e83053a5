//! The CloudWatch alarm gate: every configured alarm read with one batched
//! `DescribeAlarms` call per poll (up to 100 names a call; config allows 100).
//!
//! In a release, every member's gate reads through the release's
//! [`Shared`](crate::aws::shared::Shared) alarm readings: every member's alarms
//! at once, 100 names a call, at most once per `fresh` (see `aws::shared`).

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::config::MAX_ALARMS;
use crate::model::{GateReading, GateState, Millis};
use crate::ports::{Gate, PortError};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_cloudwatch::Client;
use std::sync::Arc;

/// The alarm gate.
#[derive(Debug, Clone)]
pub struct AlarmGate {
    client: Client,
    calls: Arc<ApiCalls>,
    alarms: Vec<String>,
    shared: Option<Arc<crate::aws::shared::Shared>>,
    /// The shared reading's refreshes when this gate's last read began.
    since: Arc<std::sync::atomic::AtomicU64>,
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
            shared: aws.shared.clone(),
            since: Arc::default(),
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
            let Some(shared) = &self.shared else {
                return self.describe(self.alarms.clone()).await;
            };
            // Whatever changed before this read, it reads (or, failing, the
            // driver reads again on its own cadence: no wake loop).
            self.since
                .store(shared.alarms.serial(), std::sync::atomic::Ordering::SeqCst);
            // A refresh's calls go at once: the answer's window keeps them
            // within the shared budget (`aws::shared::ALARM_CALLS_PER_SEC`),
            // and one after another they would add a call's time to detection.
            let read = shared.alarms.read(&self.alarms, |all| async move {
                let calls = all.chunks(MAX_ALARMS).map(|c| self.describe(c.to_vec()));
                let answers = futures::future::try_join_all(calls).await?;
                Ok(answers
                    .into_iter()
                    .flatten()
                    .map(|r| (r.name.clone(), r))
                    .collect())
            });
            let got = read.await?;
            Ok(self
                .alarms
                .iter()
                .filter_map(|n| got.get(n).cloned())
                .collect())
        })
        .await
    }

    async fn changed(&self) {
        match &self.shared {
            Some(shared) => {
                let since = self.since.load(std::sync::atomic::Ordering::SeqCst);
                shared.alarms.changed_since(&self.alarms, since).await
            }
            None => std::future::pending().await,
        }
    }
}
