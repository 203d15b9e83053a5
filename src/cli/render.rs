//! Rendering events for people (one plain, timestamped line per change) or
//! for machines (`--output json`: one JSON object per line).

use crate::events::{Event, EventKind};
use crate::model::{fmt_ms, fmt_time};
use std::io::Write;

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
        EventKind::Started { service, revision, blue_revision, green_slot, strategy, steps } => format!(
            "deploying {service} {revision} over {} with {strategy} ({}); green goes to slot {green_slot}",
            blue_revision.as_deref().unwrap_or("the live revision"),
            steps.iter().map(|w| format!("{w}%")).collect::<Vec<_>>().join(" → ")
        ),
        EventKind::Resumed { phase, previous_owner } => match previous_owner {
            Some(o) => format!("taking over the deployment ({phase}) from {o}"),
            None => format!("continuing the deployment ({phase})"),
        },
        EventKind::Phase { detail, .. } => detail.clone(),
        EventKind::Provisioning { desired } => format!("creating green with {desired} instance(s), as many as blue runs now"),
        EventKind::GreenHealth { healthy, desired } => format!("green healthy: {healthy}/{desired}"),
        EventKind::WeightsSet { weights } => format!("weights now {weights} (read back)"),
        EventKind::WeightsMismatch { set, actual, attempt } => {
            format!("weights did not take on attempt {attempt}: set {set}, read back {actual}")
        }
        EventKind::Removing { role, slot } => format!("removing {role} (slot {slot})"),
        EventKind::Gate { gate, state, reason } => format!("gate {gate}: {state} ({reason})"),
        EventKind::Retrying { op, attempt, error, backoff_ms } => {
            format!("{op} failed ({error}); attempt {} in {}", attempt + 1, fmt_ms(*backoff_ms))
        }
        EventKind::Command { command, by } => format!("`teal {command}` from {by}"),
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
        Format::Json => {
            let line = serde_json::to_string(e).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")
        }
    }
}
