//! The deployment record: what the ledger stores, and all the engine needs to
//! continue a deployment in a fresh process on another machine.

use crate::analysis::{OnMarginal, StepJudgment};
use crate::hooks::{HookPoint, HookRun};
use crate::model::InsufficientData;
use crate::model::{fmt_ms, GateState, Millis, Slot, Weights};
use crate::strategy::Step;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The engine's parameters, snapshotted into the record at the start so that
/// a resumed deployment follows the strategy it started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Strategy name, for people.
    pub strategy: String,
    /// The steps; the last is 100%.
    pub steps: Vec<Step>,
    /// Time green holds 100% before blue is retired.
    pub keep_alive_ms: Millis,
    /// Gate poll interval.
    pub poll_ms: Millis,
    /// Time green may take to become healthy.
    pub green_healthy_timeout_ms: Millis,
    /// How `INSUFFICIENT_DATA` counts.
    pub insufficient_data: InsufficientData,
    /// The lifecycle points with a hook; each must pass before the
    /// deployment goes past it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookPoint>,
    /// The router has a test listener: it is pointed 100% at green before
    /// production traffic moves, and back at blue before green is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_traffic: bool,
    /// A rolling update in place instead of blue/green: its parameters
    /// (`steps` then holds one 100% step with the bake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<crate::strategy::Rolling>,
    /// Canary analysis: each step's bake (green below 100%, blue above 0%)
    /// is judged green against blue before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Judging>,
}

/// What the engine needs of the analysis: the judging itself is the
/// driver's (it reads the data points); the engine waits for it and obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judging {
    /// How long after a bake the judgment waits for late data points.
    pub late_ms: Millis,
    /// What a marginal judgment does if nobody acts.
    pub on_marginal: OnMarginal,
}

/// Where a deployment is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Green is being created, and must become healthy within the timeout
    /// counted from when it was first seen (or, before that, from `since`).
    Provisioning {
        /// When provisioning began, or when a new process took it over
        /// before green existed (teal's own downtime is not green's fault).
        since: Millis,
        /// When green was first observed to exist.
        green_seen: Option<Millis>,
    },
    /// Traffic is moving to `steps[step]`; `reached` is when the router read
    /// back that weight (the bake runs from there).
    Shifting {
        /// Index into the plan's steps.
        step: usize,
        /// When the step's weights were read back, once they were.
        reached: Option<Millis>,
    },
    /// Green holds 100%; blue is kept for the keep-alive window from `since`.
    KeepAlive {
        /// When 100% green was read back.
        since: Option<Millis>,
    },
    /// Blue is being retired. No way back from here.
    Retiring,
    /// A rolling update in place: the new revision replaces the old one under
    /// the platform's controls, then bakes with gates watched.
    Updating {
        /// When the update began.
        since: Millis,
        /// teal asked the platform to start it.
        started: bool,
        /// The rollout was seen under way (or done): from then on, the old
        /// revision running again means the platform rolled back on its own.
        seen: bool,
        /// When the rollout was seen completed (the bake runs from there).
        completed: Option<Millis>,
    },
    /// Traffic to 100% blue, then green removed.
    RollingBack {
        /// Why.
        reason: Reason,
    },
    /// Traffic to 100% blue, green kept for a person to look at.
    Halting {
        /// Why.
        reason: Reason,
    },
    /// Finished.
    Done {
        /// How it ended.
        outcome: Outcome,
        /// When.
        at: Millis,
    },
}

impl Phase {
    /// A short name for output (`shifting`, `keep_alive`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Provisioning { .. } => "provisioning",
            Phase::Shifting { .. } => "shifting",
            Phase::KeepAlive { .. } => "keep_alive",
            Phase::Retiring => "retiring",
            Phase::Updating { .. } => "updating",
            Phase::RollingBack { .. } => "rolling_back",
            Phase::Halting { .. } => "halting",
            Phase::Done { .. } => "done",
        }
    }

    /// Past the point of no return: blue is being retired, or the run has
    /// succeeded. Gates no longer change anything from here, so the driver
    /// keeps watching them until this phase is stored (see `driver::advance`).
    pub fn past_return(&self) -> bool {
        matches!(
            self,
            Phase::Retiring
                | Phase::Done {
                    outcome: Outcome::Succeeded,
                    ..
                }
        )
    }

    /// Whether the deployment has ended.
    pub fn is_done(&self) -> bool {
        matches!(self, Phase::Done { .. })
    }
}

/// An operator's hold on automatic progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hold", rename_all = "snake_case")]
pub enum Hold {
    /// Stay at the current step; gates still watched.
    Paused,
    /// Stay at an operator-chosen weight; gates still watched unless
    /// `ignore_gates`.
    Manual {
        /// Percent of traffic to green.
        green: u8,
        /// The operator overrode the gates: a failing gate is reported but
        /// does not roll back while this hold lasts.
        #[serde(default)]
        ignore_gates: bool,
    },
    /// The step's judgment was marginal: stay at the step, gates still
    /// watched, until a person promotes or rolls back (or the timeout acts).
    Marginal {
        /// When the judgment was made.
        since: Millis,
    },
    /// The step baked and waits for a person's `teal approve` (or
    /// `teal rollback`), gates still watched; at `until`, its `on_timeout`.
    Approval {
        /// When the wait began.
        since: Millis,
        /// When the timeout acts; `None`: no timeout (or it held).
        until: Option<Millis>,
    },
}

/// A step's approval: who gave it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    /// The step approved (a rolling update's bake is step 0).
    pub step: usize,
    /// Who: the sender of `teal approve`, or `on_timeout = "promote"`.
    pub by: String,
    /// When.
    pub at: Millis,
}

/// An operator command waiting in the record for the process that drives
/// the deployment (`teal shift` from another machine while `teal deploy` runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Unique id, so that the sender can find its reply.
    pub id: String,
    /// The command.
    pub command: super::Command,
    /// Who sent it.
    pub by: String,
    /// When.
    pub at: Millis,
}

/// What became of a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id.
    pub id: String,
    /// Whether it was applied.
    pub applied: bool,
    /// What was done, or why it was refused.
    pub message: String,
    /// When.
    pub at: Millis,
}

/// Replies kept in the record: enough for any sender still waiting.
pub const REPLIES_KEPT: usize = 4;

/// Who holds a deployment and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// `user@host:pid` or a CodeBuild build id.
    pub owner: String,
    /// The lock lapses at this time unless renewed.
    pub expires_at: Millis,
}

/// Why a deployment rolled back or halted, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A gate failed.
    GateFailed {
        /// The gate (alarm) name.
        gate: String,
        /// The state it was in.
        state: GateState,
        /// Its own explanation (CloudWatch's state reason).
        detail: String,
        /// When it entered that state.
        since: Millis,
        /// When teal saw it.
        seen_at: Millis,
    },
    /// Green did not become healthy in time.
    GreenNeverHealthy {
        /// Healthy targets when time ran out.
        healthy: u32,
        /// Desired count.
        desired: u32,
        /// How long teal waited.
        waited_ms: Millis,
    },
    /// Green lost all healthy targets while it carried traffic.
    GreenLostHealth {
        /// Healthy targets seen.
        healthy: u32,
        /// Desired count.
        desired: u32,
        /// When.
        at: Millis,
    },
    /// The idle slot holds a fleet of another revision.
    UnexpectedGreen {
        /// The revision found.
        found: Option<String>,
        /// When.
        at: Millis,
    },
    /// An operator asked.
    Operator {
        /// The command (`rollback`, ...).
        command: String,
        /// When.
        at: Millis,
    },
    /// The router did not take a weight change.
    WeightsDidNotTake {
        /// What teal set.
        set: Weights,
        /// What it read back.
        actual: Weights,
        /// When.
        at: Millis,
    },
    /// Traffic was found back on blue while green should have had some: an
    /// interrupted rollback or halt, or someone moved it by hand. teal sends no
    /// traffic back to a green it cannot vouch for, and keeps green for a person.
    TrafficMovedToBlue {
        /// What the record expected.
        expected: Weights,
        /// When.
        at: Millis,
    },
    /// teal was told to stop (SIGINT/SIGTERM).
    Interrupted {
        /// The signal.
        signal: String,
        /// When.
        at: Millis,
    },
    /// A cloud call kept failing.
    ProviderFailed {
        /// The last error.
        error: String,
        /// When.
        at: Millis,
    },
    /// A rolling update failed or stopped part-way (the platform's words).
    RolloutFailed {
        /// What the platform said.
        detail: String,
        /// When.
        at: Millis,
    },
    /// The platform rolled a rolling update back on its own (ECS's circuit
    /// breaker, an instance refresh's auto rollback).
    PlatformRolledBack {
        /// What the platform said.
        detail: String,
        /// When.
        at: Millis,
    },
    /// A lifecycle hook failed: exited non-zero, could not start, or timed out.
    HookFailed {
        /// The run (`before-traffic`, `after-step 2`, ...).
        hook: String,
        /// What happened, with the end of its output.
        detail: String,
        /// When teal saw it.
        at: Millis,
    },
    /// Canary analysis judged green worse than blue over a step's bake.
    AnalysisFailed {
        /// The step judged.
        step: usize,
        /// The failing metrics with green's and blue's values and the test.
        detail: String,
        /// When.
        at: Millis,
    },
    /// A step waited for approval until its timeout, then rolled back.
    ApprovalTimedOut {
        /// The step.
        step: usize,
        /// How long it waited.
        waited_ms: Millis,
        /// When.
        at: Millis,
    },
    /// A marginal judgment was held for its timeout, then rolled back.
    MarginalTimedOut {
        /// The step judged.
        step: usize,
        /// The judgment in words.
        detail: String,
        /// How long it was held.
        held_ms: Millis,
        /// When.
        at: Millis,
    },
    /// Another member of this deployment's release failed, and the
    /// release's `on_failure` sends this one back too.
    ReleaseFailed {
        /// The release's name.
        release: String,
        /// Which member failed, and how.
        cause: String,
        /// When.
        at: Millis,
    },
    /// Blue's fleet vanished while it was needed.
    BlueGone {
        /// When.
        at: Millis,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::GateFailed { gate, state, detail, .. } => write!(f, "gate {gate:?} is {state}: {detail}"),
            Reason::GreenNeverHealthy { healthy, desired, waited_ms } => {
                write!(f, "green did not become healthy within {} ({healthy}/{desired} healthy)", fmt_ms(*waited_ms))
            }
            Reason::GreenLostHealth { healthy, desired, .. } => {
                write!(f, "green lost its healthy targets while carrying traffic ({healthy}/{desired} healthy)")
            }
            Reason::UnexpectedGreen { found, .. } => {
                write!(f, "the idle slot holds a fleet of another revision ({})", found.as_deref().unwrap_or("unknown"))
            }
            Reason::Operator { command, .. } => write!(f, "operator ran `teal {command}`"),
            Reason::WeightsDidNotTake { set, actual, .. } => write!(f, "the router did not take weights: set {set}, read back {actual}"),
            Reason::TrafficMovedToBlue { expected, .. } => write!(
                f,
                "traffic was found at 100% blue while the deployment expected {expected} (an interrupted rollback or halt, or a change by hand); green is kept, `teal rollback` removes it"
            ),
            Reason::Interrupted { signal, .. } => write!(f, "interrupted by {signal}"),
            Reason::ProviderFailed { error, .. } => write!(f, "a cloud call kept failing: {error}"),
            Reason::RolloutFailed { detail, .. } => write!(f, "the rolling update failed: {detail}"),
            Reason::PlatformRolledBack { detail, .. } => write!(f, "{detail}"),
            Reason::HookFailed { hook, detail, .. } => write!(f, "the {hook} hook failed: {detail}"),
            Reason::AnalysisFailed { step, detail, .. } => write!(f, "canary analysis failed green at step {}: {detail}", step + 1),
            Reason::MarginalTimedOut { step, detail, held_ms, .. } => write!(
                f,
                "the marginal judgment of step {} was held {} and nobody promoted it: {detail}",
                step + 1,
                fmt_ms(*held_ms)
            ),
            Reason::ApprovalTimedOut { step, waited_ms, .. } => write!(
                f,
                "step {} waited {} for approval and nobody approved it",
                step + 1,
                fmt_ms(*waited_ms)
            ),
            Reason::ReleaseFailed { release, cause, .. } => write!(f, "release {release:?} failed: {cause}"),
            Reason::BlueGone { .. } => write!(f, "blue's fleet is gone; traffic cannot be restored to it"),
        }
    }
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Green takes 100%, blue is retired.
    Succeeded,
    /// Blue takes 100%, green is removed.
    RolledBack {
        /// Why.
        reason: Reason,
    },
    /// Blue takes 100%, green kept; a person must decide.
    Halted {
        /// Why.
        reason: Reason,
    },
}

impl Outcome {
    /// `succeeded`, `rolled_back` or `halted`.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled_back",
            Outcome::Halted { .. } => "halted",
        }
    }

    /// The reason, unless it succeeded.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Outcome::Succeeded => None,
            Outcome::RolledBack { reason } | Outcome::Halted { reason } => Some(reason),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("Succeeded"),
            Outcome::RolledBack { reason } => write!(f, "RolledBack: {reason}"),
            Outcome::Halted { reason } => write!(f, "Halted: {reason}"),
        }
    }
}

/// Which release started a deployment: kept in each member's record, so
/// that the release's state is found from any machine by reading its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseTag {
    /// The release's name (`[release] name`).
    pub name: String,
    /// This run of the release (`r-...`), shared by its members.
    pub id: String,
    /// The member's wave, 0-based.
    pub wave: usize,
}

/// The deployment record, as stored by the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version of this record.
    pub schema: u32,
    /// Deployment id (`d-...`).
    pub id: String,
    /// The service.
    pub service: String,
    /// Green's revision.
    pub revision: String,
    /// Blue's revision, when known.
    pub blue_revision: Option<String>,
    /// What green runs (`image=...`, `task-definition=...`, `ami=...`,
    /// `launch-template-version=...`), so that any process can provision it.
    #[serde(default)]
    pub green: Option<String>,
    /// The CodeBuild run that started the deployment, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::pipeline::Build>,
    /// The slot green occupies.
    pub green_slot: Slot,
    /// The plan.
    pub plan: Plan,
    /// Where it is.
    pub phase: Phase,
    /// An operator's hold.
    pub hold: Option<Hold>,
    /// When it started.
    pub started_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Who drives it; `None` between `teal reconcile --once` passes.
    pub lock: Option<Lock>,
    /// Operator commands not yet applied by the lock's owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbox: Vec<Request>,
    /// What became of the last few requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<Reply>,
    /// Hook runs that passed; a run not listed is (re)started when due.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks_passed: Vec<HookRun>,
    /// The steps approved so far, by whom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approved>,
    /// The last judgment of a bake by canary analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgment: Option<StepJudgment>,
    /// The release this deployment is a member of, when one started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseTag>,
    /// Optimistic-concurrency version, maintained by the ledger.
    pub version: u64,
}

/// The record format version this build writes.
pub const RECORD_SCHEMA: u32 = 1;

impl Record {
    /// Its green, as the ports that make it are told.
    pub fn green(&self) -> crate::model::Green {
        crate::model::Green {
            revision: self.revision.clone(),
            runs: self.green.clone(),
            since: self.started_at,
        }
    }

    /// Blue's slot.
    pub fn blue_slot(&self) -> Slot {
        self.green_slot.other()
    }

    /// Whether the deployment is still in flight.
    pub fn in_flight(&self) -> bool {
        !self.phase.is_done()
    }
}

impl Record {
    /// The record in the compact text form the cloud ledgers store: JSON,
    /// deflated, base64. Tags and TXT strings are small (moto allows 10 tags
    /// of 256 characters), and a record with operator requests must fit.
    pub fn pack(&self) -> String {
        use base64::Engine as _;
        use std::io::Write as _;
        let json = serde_json::to_vec(self).expect("records serialise");
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&json).expect("writing to a Vec");
        let deflated = z.finish().expect("writing to a Vec");
        base64::engine::general_purpose::STANDARD.encode(deflated)
    }

    /// Read [`Record::pack`]'s form; the error says what is wrong.
    pub fn unpack(text: &str) -> Result<Record, String> {
        use base64::Engine as _;
        use std::io::Read as _;
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("ledger is not base64: {e}"))?;
        let mut json = Vec::new();
        flate2::read::DeflateDecoder::new(&deflated[..])
            .read_to_end(&mut json)
            .map_err(|e| format!("ledger is not deflated: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("ledger record unreadable: {e}"))
    }
}

#[cfg(test)]
use crate::analysis::{assess::MetricLine, MarginalAction, StepOutcome, Window};
/// A record held after a marginal judgment of its first step (10% for 1m,
/// judged 2m later), with `metrics` metric lines, for tests.
#[cfg(test)]
pub(crate) fn sample_judged_record(timeout_ms: Option<Millis>, metrics: usize) -> Record {
    let step = |weight, bake_ms| Step::new(weight, bake_ms);
    Record {
        schema: RECORD_SCHEMA,
        id: "d-1".into(),
        service: "web".into(),
        revision: "v2".into(),
        blue_revision: Some("v1".into()),
        green: None,
        build: None,
        green_slot: Slot::B,
        plan: Plan {
            strategy: "s".into(),
            steps: vec![step(10, 60_000), step(100, 0)],
            keep_alive_ms: 0,
            poll_ms: 1_000,
            green_healthy_timeout_ms: 60_000,
            insufficient_data: InsufficientData::Ok,
            hooks: vec![],
            test_traffic: false,
            rolling: None,
            analysis: Some(Judging {
                late_ms: 120_000,
                on_marginal: OnMarginal {
                    timeout_ms,
                    action: MarginalAction::Rollback,
                },
            }),
        },
        phase: Phase::Shifting {
            step: 0,
            reached: Some(0),
        },
        hold: Some(Hold::Marginal { since: 180_000 }),
        started_at: 0,
        updated_at: 0,
        lock: None,
        inbox: vec![],
        replies: vec![],
        hooks_passed: vec![],
        approvals: vec![],
            release: None,
        judgment: Some(StepJudgment {
            window: Window {
                step: 0,
                from: 0,
                to: 60_000,
            },
            outcome: StepOutcome::Marginal,
            score: Some(80.0),
            metrics: (0..metrics)
                .map(|i| {
                    // Values that differ per metric, as real ones do (they compress less).
                    let x = (i as f64 * 0.618_034).fract();
                    let (green, blue, p) = (0.1 + x, 0.05 + x / 3.0, x / 97.0);
                    MetricLine {
                        name: format!("metric-{i}-{}", (x * 1e6) as u32),
                        verdict: "fail".into(),
                        green,
                        green_points: 20 + i,
                        blue,
                        blue_points: 19 + i,
                        p: Some(p),
                        critical: i % 2 == 0,
                        text: format!(
                            "metric-{i}: green {green:.4} vs blue {blue:.4} over {}/{} points, p={p:.4} (fails below 0.0100): FAIL",
                            20 + i,
                            19 + i
                        ),
                    }
                })
                .collect(),
        }),
        version: 1,
    }
}
