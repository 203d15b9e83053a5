//! The admin API's wire types, shared by the daemon (which serves them) and
//! the client ports (which send them). Endpoints: see `docs/ARCHITECTURE.md`.

use crate::model::{Millis, Slot};
use serde::{Deserialize, Serialize};

/// `PUT /v1/rollout` and `POST /v1/rollout/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// The revision rolled out.
    pub revision: String,
    /// When the deployment rolling it out began: a job begun for another
    /// deployment (of the same revision, say) is not this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    /// The strategy's `max_percent`: how many instances are replaced at once
    /// (the surge above the fleet's size, at least one). Start requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_percent: Option<u16>,
}

/// Request counts of one slot, for `teal demo` and people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotStats {
    /// The slot.
    pub slot: Slot,
    /// Its revision, if a fleet runs there.
    pub revision: Option<String>,
    /// Its weight.
    pub weight: u8,
    /// Requests proxied to it since the daemon started.
    pub requests: u64,
    /// Of which failed (5xx or no answer).
    pub failed: u64,
}

/// `POST /v1/samples`: what the proxy saw per slot, in periods.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SamplesRequest {
    /// Periods starting at or after this.
    pub from: Millis,
    /// The period (whole seconds).
    pub period_ms: Millis,
    /// The latency percentiles wanted (`99.0`).
    pub percentiles: Vec<f64>,
}

/// One period of one slot: its requests, failures, and latency at each
/// asked percentile (ms). Periods without requests are absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeriodSample {
    /// Start of the period.
    pub at: Millis,
    /// Requests that ended in it.
    pub requests: u64,
    /// Of which failed (5xx or no answer).
    pub failed: u64,
    /// Latency at each percentile asked, in ms.
    pub latency_ms: Vec<f64>,
}

/// One instance, as `GET /v1/instances` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceInfo {
    /// The slot it serves.
    pub slot: Slot,
    /// The revision it runs.
    pub revision: String,
    /// Its loopback port.
    pub port: u16,
    /// Whether its last health check passed.
    pub healthy: bool,
}

/// `PUT /v1/fleets/{slot}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionRequest {
    /// The revision label, passed to the command as `{revision}`.
    pub revision: String,
    /// How many instances.
    pub desired: u32,
}
