//! Rendering events for people (one plain, timestamped line per change) or
//! for machines (`--output json`: one JSON object per line, each carrying
//! `"schema": 1`; every kind and field is documented in `docs/EVENTS.md`,
//! which `tests/events_schema.rs` holds to this code).

use crate::events::{Event, EventKind};
use crate::model::{fmt_ms, fmt_time};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// The version of the JSON lines' shape; bumped when a field changes meaning
/// or goes away (added fields do not bump it).
pub const EVENTS_SCHEMA: u32 = 1;

/// Where an operator command stands, as its sender reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Applied (by this process, or by the driver that answered).
    Applied,
    /// Waiting in the record's inbox for the process that drives the deployment.
    Queued,
    /// That process did not answer; this one takes the deployment over.
    TakingOver,
}

/// What a `reconcile` pass found to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileState {
    /// No deployment is recorded.
    None,
    /// Another live process drives it.
    Skipped,
    /// It has ended.
    Ended,
}

/// The JSON lines the command line writes besides a deployment's [`Event`]s.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CliLine {
    /// The AWS API calls the process made, per operation (the last line).
    ApiCalls {
        /// All calls, accepted or not.
        total: u64,
        /// Observations of the deployment, when this process drove it.
        observations: Option<u64>,
        /// Calls AWS accepted, per operation.
        calls: BTreeMap<String, u64>,
        /// Calls AWS answered with an error, per `Operation:ErrorCode`
        /// (a conditional write that lost, a throttled call): they changed nothing.
        rejected: BTreeMap<String, u64>,
        /// Calls AWS throttled (counted in `rejected` too); each was retried.
        throttled: u64,
        /// Calls that waited for the client-side rate limit, and their waits
        /// in all (ms).
        paced: u64,
        /// The waits of `paced`, in all.
        paced_ms: u64,
    },
    /// The command failed; `exit` is the process's exit code.
    Error {
        /// The exit code.
        exit: u8,
        /// What went wrong.
        message: String,
    },
    /// An operator command's progress, from the process that sent it.
    Request {
        /// Where it stands.
        state: RequestState,
        /// The command (`shift`, `promote --full`, ...).
        command: String,
        /// The deployment, when known here.
        deployment: Option<String>,
        /// The request id in the record's inbox, when queued.
        request: Option<String>,
        /// The process that drives the deployment, when another does.
        driver: Option<String>,
    },
    /// `--detach` or `reconcile --once` left the deployment waiting.
    Detached {
        /// The deployment.
        deployment: String,
        /// Its phase.
        phase: String,
    },
    /// `teal verify` found nothing in the way.
    Verified {
        /// The service.
        service: String,
        /// Green's revision label.
        revision: String,
        /// Blue, in words.
        blue: String,
        /// What may surprise.
        warnings: Vec<String>,
    },
    /// `reconcile` found nothing to do.
    Reconcile {
        /// Why.
        state: ReconcileState,
        /// The deployment, when there is one.
        deployment: Option<String>,
        /// The process that drives it, when skipped.
        driver: Option<String>,
    },
}

#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    schema: u32,
    #[serde(flatten)]
    line: &'a T,
}

/// One JSON line with the schema version.
pub fn write_json(out: &mut impl Write, line: &impl Serialize) -> std::io::Result<()> {
    let v = Versioned {
        schema: EVENTS_SCHEMA,
        line,
    };
    let text = serde_json::to_string(&v).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

/// How output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain lines for people and CI logs.
    Text,
    /// One JSON object per line.
    Json,
}

/// The words for one event.
pub fn describe(e: &EventKind) -> String {
    match e {
        EventKind::Started { service, revision, blue_revision, strategy, rolling: true, .. } => format!(
            "deploying {service} {revision} over {} with {strategy}: a rolling update in place",
            blue_revision.as_deref().unwrap_or("the live revision"),
        ),
        EventKind::Started { service, revision, blue_revision, green_slot, strategy, steps, .. } => format!(
            "deploying {service} {revision} over {} with {strategy} ({}); green goes to slot {green_slot}",
            blue_revision.as_deref().unwrap_or("the live revision"),
            steps.iter().map(|w| format!("{w}%")).collect::<Vec<_>>().join(" → ")
        ),
        EventKind::Resumed {
            phase,
            previous_owner,
            ..
        } => match previous_owner {
            Some(o) => format!("taking over the deployment ({phase}) from {o}"),
            None => format!("continuing the deployment ({phase})"),
        },
        EventKind::Phase { detail, .. } => detail.clone(),
        EventKind::Provisioning { desired } => format!("creating green with {desired} instance(s), as many as blue runs now"),
        EventKind::GreenHealth { healthy, desired } => format!("green healthy: {healthy}/{desired}"),
        EventKind::WeightsSet { weights } => format!("weights now {weights} (read back)"),
        EventKind::TestWeightsSet { weights } => format!("test listener now {weights} (read back); no production traffic moved"),
        EventKind::WeightsMismatch { set, actual, attempt } => {
            format!("weights did not take on attempt {attempt}: set {set}, read back {actual}")
        }
        EventKind::Removing { role, slot } => format!("removing {role} (slot {slot})"),
        EventKind::RolloutState { state } => state.to_string(),
        EventKind::RolloutAction { action } => match action.as_str() {
            "start" => "starting the rolling update".to_string(),
            _ => "putting the previous revision back".to_string(),
        },
        EventKind::HookStarted { hook } => format!("hook {hook}: started"),
        EventKind::HookFinished { hook, passed: true, took_ms, .. } => format!("hook {hook} passed in {}", fmt_ms(*took_ms)),
        EventKind::HookFinished { hook, detail, took_ms, .. } => format!("hook {hook} FAILED after {}: {detail}", fmt_ms(*took_ms)),
        EventKind::Judgment { step, outcome, summary, .. } => {
            let next = match outcome {
                crate::analysis::StepOutcome::Pass => "next step",
                crate::analysis::StepOutcome::Marginal => "holding for `teal promote` or `teal rollback`",
                crate::analysis::StepOutcome::Fail => "rolling back",
            };
            format!("analysis of step {step}: {} ({summary}); {next}", format!("{outcome:?}").to_uppercase())
        }
        EventKind::Gate { gate, state, reason } => format!("gate {gate}: {state} ({reason})"),
        EventKind::Retrying { op, attempt, error, backoff_ms } => {
            format!("{op} failed ({error}); attempt {} in {}", attempt + 1, fmt_ms(*backoff_ms))
        }
        EventKind::Command { command, by } => format!("`teal {command}` from {by}"),
        EventKind::AwaitingApproval {
            step,
            weight,
            until,
            on_timeout,
            ..
        } => {
            let timeout = match (until, on_timeout) {
                (Some(at), Some(on)) => format!("; at {} it will {on}", fmt_time(*at)),
                _ => String::new(),
            };
            format!(
                "step {step} ({weight}% green) waits for approval: `teal approve` goes on, `teal rollback` refuses it{timeout}"
            )
        }
        EventKind::Approved { step, by } => format!("step {step} approved by {by}"),
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::Interrupted { signal } => format!("{signal}: bringing traffic to a safe state before stopping"),
        EventKind::Finished { outcome, calls } => {
            let total: u64 = calls.values().sum();
            let per_op = calls.iter().map(|(op, n)| format!("{op}={n}")).collect::<Vec<_>>().join(" ");
            format!("outcome: {outcome}; {total} calls ({per_op})")
        }
    }
}

/// Write one event.
pub fn write_event(out: &mut impl Write, format: Format, e: &Event) -> std::io::Result<()> {
    match format {
        Format::Text => writeln!(out, "{}  {}", fmt_time(e.at), describe(&e.kind)),
        Format::Json => write_json(out, e),
    }
}
