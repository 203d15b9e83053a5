//! What a deployment reports as it goes: one [`Event`] per change.
//!
//! The driver emits them; the CLI renders them as lines for people or as JSON
//! lines (`--output json`), and reports collect them.

use crate::engine::{Outcome, Phase};
use crate::model::{GateState, Millis, Slot, Weights};
use serde::Serialize;
use std::collections::BTreeMap;

/// One thing that happened, at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When (ms since the Unix epoch; virtual time in the simulator).
    pub at: Millis,
    /// The deployment id.
    pub deployment: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A new deployment began.
    Started {
        /// The service.
        service: String,
        /// Green's revision.
        revision: String,
        /// Blue's revision, when known.
        blue_revision: Option<String>,
        /// Green's slot.
        green_slot: Slot,
        /// Strategy name.
        strategy: String,
        /// Green weight of each step.
        steps: Vec<u8>,
        /// A rolling update in place (then `green_slot` and `steps` mean nothing).
        rolling: bool,
    },
    /// An in-flight deployment was taken up by this process.
    Resumed {
        /// The service.
        service: String,
        /// Green's revision.
        revision: String,
        /// Blue's revision, when known.
        blue_revision: Option<String>,
        /// Green weight of each step.
        steps: Vec<u8>,
        /// Its phase.
        phase: String,
        /// The previous lock holder, if any.
        previous_owner: Option<String>,
    },
    /// The engine changed phase.
    Phase {
        /// Left.
        from: String,
        /// Entered.
        to: String,
        /// Why, in words.
        detail: String,
    },
    /// Green is being created.
    Provisioning {
        /// Instances.
        desired: u32,
    },
    /// Green's health changed.
    GreenHealth {
        /// Healthy instances.
        healthy: u32,
        /// Desired instances.
        desired: u32,
    },
    /// Weights were set and read back equal.
    WeightsSet {
        /// The weights.
        weights: Weights,
    },
    /// The test listener's weights were set and read back equal.
    TestWeightsSet {
        /// The weights.
        weights: Weights,
    },
    /// Weights were set but read back different.
    WeightsMismatch {
        /// Set.
        set: Weights,
        /// Read back.
        actual: Weights,
        /// Attempt number.
        attempt: u32,
    },
    /// A lifecycle hook was started.
    HookStarted {
        /// The run (`before-traffic`, `after-step 2`, `before-retire`).
        hook: String,
    },
    /// A lifecycle hook ended; a failed one rolls the deployment back.
    HookFinished {
        /// The run.
        hook: String,
        /// Whether it exited 0 within its timeout.
        passed: bool,
        /// Why it failed, with the end of its output; empty when it passed.
        detail: String,
        /// How long it ran.
        took_ms: Millis,
    },
    /// Canary analysis judged a step's bake, green against blue.
    Judgment {
        /// The step (1-based).
        step: usize,
        /// `pass` (next step), `marginal` (held for a person) or `fail` (roll back).
        outcome: crate::analysis::StepOutcome,
        /// The score, 0 to 100; absent when no metric had data enough.
        score: Option<f64>,
        /// The verdict in words: the score and each metric that did not pass.
        summary: String,
        /// Each compared metric: green's and blue's means and data points, the test's p.
        metrics: Vec<crate::analysis::assess::MetricLine>,
    },
    /// A rolling update's state changed (or was first seen).
    RolloutState {
        /// The state, as the platform reports it.
        #[serde(flatten)]
        state: crate::model::RolloutState,
    },
    /// teal starts the rolling update, or puts the previous revision back.
    RolloutAction {
        /// `start` or `revert`.
        action: String,
    },
    /// A fleet is being removed.
    Removing {
        /// `blue` or `green`.
        role: String,
        /// Its slot.
        slot: Slot,
    },
    /// A gate changed state (or was first seen).
    Gate {
        /// Gate name.
        gate: String,
        /// Its state.
        state: GateState,
        /// Its reason.
        reason: String,
    },
    /// A cloud call failed and will be retried.
    Retrying {
        /// The operation.
        op: String,
        /// Attempt that failed (1-based).
        attempt: u32,
        /// The error.
        error: String,
        /// Wait before the next attempt.
        backoff_ms: Millis,
    },
    /// Something that may surprise, found before the start.
    Warning {
        /// What, and why.
        message: String,
    },
    /// A step baked and waits for a person's `teal approve` (or its
    /// timeout); announced when the wait begins and when its timeout holds.
    AwaitingApproval {
        /// The step (1-based); a rolling update's bake is step 1.
        step: usize,
        /// Green's weight in that step.
        weight: u8,
        /// Since when.
        since: Millis,
        /// When the timeout acts, if it does.
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Millis>,
        /// What the timeout does (`rollback`, `promote`, `hold`).
        #[serde(skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    /// A step's approval was recorded.
    Approved {
        /// The step (1-based).
        step: usize,
        /// Who approved it.
        by: String,
    },
    /// An operator command sent by another process was taken from the inbox.
    Command {
        /// The command (`shift`, `promote --full`, ...).
        command: String,
        /// Who sent it.
        by: String,
    },
    /// A signal arrived; traffic goes to a safe state.
    Interrupted {
        /// The signal.
        signal: String,
    },
    /// The deployment ended.
    Finished {
        /// How.
        outcome: Outcome,
        /// Port calls made by this process, per operation.
        calls: BTreeMap<String, u64>,
    },
}

/// Describe a phase change in words.
pub fn describe_phase(to: &Phase, steps: &[u8]) -> String {
    match to {
        Phase::Provisioning { .. } => "standing up green".to_string(),
        Phase::Shifting { step, .. } => format!(
            "step {}/{}: {}% to green",
            step + 1,
            steps.len(),
            steps[*step]
        ),
        Phase::KeepAlive { .. } => {
            "green holds 100%; keeping blue for the keep-alive window".to_string()
        }
        Phase::Retiring => "retiring blue".to_string(),
        Phase::Updating {
            completed: Some(_), ..
        } => "the new revision runs everywhere; baking with gates watched".to_string(),
        Phase::Updating { .. } => "rolling update in place".to_string(),
        Phase::RollingBack { reason } => format!("rolling back: {reason}"),
        Phase::Halting { reason } => format!("halting: {reason}"),
        Phase::Done { outcome, .. } => outcome.to_string(),
    }
}

/// The events people are told about (`[notify] events`): a deployment's
/// milestones, each the meaning of one or more [`EventKind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// A deployment began (`started`), or was taken up (`resumed`).
    Started,
    /// A step's weights were set and read back (`weights_set` while shifting).
    Step,
    /// A step waits for `teal approve` (`awaiting_approval`).
    AwaitingApproval,
    /// A step's approval was recorded (`approved`).
    Approved,
    /// Canary analysis judged a step (`judgment`).
    Judgment,
    /// Traffic is going back to blue (`phase` to `rolling_back`).
    RollingBack,
    /// The deployment ended rolled back (`finished`).
    RolledBack,
    /// The deployment ended halted: blue serves, green kept for a person (`finished`).
    Halted,
    /// The deployment ended with green serving and blue retired (`finished`).
    Succeeded,
}

impl Milestone {
    /// Every milestone, in a deployment's order.
    pub const ALL: [Milestone; 9] = [
        Milestone::Started,
        Milestone::Step,
        Milestone::AwaitingApproval,
        Milestone::Approved,
        Milestone::Judgment,
        Milestone::RollingBack,
        Milestone::RolledBack,
        Milestone::Halted,
        Milestone::Succeeded,
    ];

    /// The name in `teal.toml` and in notifications.
    pub fn name(self) -> &'static str {
        match self {
            Milestone::Started => "started",
            Milestone::Step => "step",
            Milestone::AwaitingApproval => "awaiting_approval",
            Milestone::Approved => "approved",
            Milestone::Judgment => "judgment",
            Milestone::RollingBack => "rolling_back",
            Milestone::RolledBack => "rolled_back",
            Milestone::Halted => "halted",
            Milestone::Succeeded => "succeeded",
        }
    }

    /// The milestone named `name`.
    pub fn parse(name: &str) -> Option<Milestone> {
        Milestone::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The milestone `kind` is, if any; `shifting`: whether the deployment
    /// is moving toward green (a `weights_set` of a rollback is no step).
    pub fn of(kind: &EventKind, shifting: bool) -> Option<Milestone> {
        Some(match kind {
            EventKind::Started { .. } | EventKind::Resumed { .. } => Milestone::Started,
            EventKind::WeightsSet { .. } if shifting => Milestone::Step,
            EventKind::AwaitingApproval { .. } => Milestone::AwaitingApproval,
            EventKind::Approved { .. } => Milestone::Approved,
            EventKind::Judgment { .. } => Milestone::Judgment,
            EventKind::Phase { to, .. } if to == "rolling_back" => Milestone::RollingBack,
            EventKind::Finished { outcome, .. } => match outcome {
                Outcome::Succeeded => Milestone::Succeeded,
                Outcome::RolledBack { .. } => Milestone::RolledBack,
                Outcome::Halted { .. } => Milestone::Halted,
            },
            _ => return None,
        })
    }
}
