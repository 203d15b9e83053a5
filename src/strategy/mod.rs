//! Strategies: the ordered steps of a deployment.
//!
//! A strategy is a TOML table in one of four shapes, all expanded into a list
//! of [`Step`]s (weight to green + bake time) ending at 100%:
//!
//! - `steps = [{ weight = 5, bake = "2m" }, ..., { weight = 100 }]`: explicit;
//! - `linear = { step = 10, interval = "1m" }`: 10%, 20%, ... every interval;
//! - `canary = { percent = 10, bake = "5m" }`: one canary step, then 100%;
//! - `rolling = { min_healthy_percent, max_percent, bake, step }`: in place
//!   (`step`: Auto Scaling checkpoints).
//!
//! Each also sets the keep-alive before blue is retired, the gate poll interval
//! and the green-healthy timeout. Built-ins live in `strategies/` and are
//! embedded in the binary ([`builtin`]).

mod builtin;
pub mod raw;

pub use builtin::{builtin, builtin_names, builtins};
pub use raw::RawStrategy;

use crate::diag::{InputError, SourceFile};
use crate::model::{fmt_ms, Millis};
use serde::{Deserialize, Serialize};

/// One step of a blue/green strategy: move `weight`% of traffic to green,
/// then bake for `bake` while the gates hold (and, with `approve`, wait for
/// a person's `teal approve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Percent of traffic to green during this step (1..=100).
    pub weight: u8,
    /// How long to hold this weight, gates watched, before the next step.
    pub bake_ms: Millis,
    /// After the bake, wait for a person's approval before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<Approval>,
}

impl Step {
    /// A step with no approval.
    pub fn new(weight: u8, bake_ms: Millis) -> Step {
        Step {
            weight,
            bake_ms,
            approve: None,
        }
    }
}

/// A wait for a person's `teal approve` after a step's bake, gates still
/// watched: `approve = true` (no timeout) or
/// `approve = { timeout = "4h", on_timeout = "rollback" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// How long to wait; `None`: as long as it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Millis>,
    /// What the timeout does.
    pub on_timeout: OnTimeout,
}

/// What an approval's timeout does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Roll back (the default: nobody said yes).
    Rollback,
    /// Go on as if approved.
    Promote,
    /// Keep waiting, with no further timeout.
    Hold,
}

impl OnTimeout {
    /// Its name in config and output.
    pub fn name(self) -> &'static str {
        match self {
            OnTimeout::Rollback => "rollback",
            OnTimeout::Promote => "promote",
            OnTimeout::Hold => "hold",
        }
    }
}

/// Parameters of an in-place rolling update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolling {
    /// Capacity that must stay healthy during the update, in percent.
    pub min_healthy_percent: u8,
    /// Upper bound of capacity during the update, in percent (100..=200).
    pub max_percent: u16,
    /// Gate-watched bake after the update completes.
    pub bake_ms: Millis,
    /// Auto Scaling only: a checkpoint every this percent of the group, each
    /// but the last (100%) followed by a gate-watched wait of `bake` (the
    /// instance refresh's checkpoints). `None`: one pass, as
    /// `min_healthy_percent` allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u8>,
    /// After the bake, wait for a person's approval before succeeding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<Approval>,
}

impl Rolling {
    /// The checkpoints `step` makes, in percent of the group, ascending,
    /// ending at 100 (empty without `step`).
    pub fn checkpoints(&self) -> Vec<u8> {
        let Some(step) = self.step.filter(|s| *s > 0) else {
            return vec![];
        };
        let mut out: Vec<u8> = (1..)
            .map(|i| u16::from(step) * i)
            .take_while(|p| *p < 100)
            .map(|p| p as u8)
            .collect();
        out.push(100);
        out
    }
}

/// The shape of a strategy after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// Blue/green traffic shifting in steps; the last step is always 100%.
    BlueGreen {
        /// The expanded steps.
        steps: Vec<Step>,
    },
    /// Rolling replacement in place.
    Rolling(Rolling),
}

/// A validated strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Built-in name, file path, or `inline`.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The steps.
    pub shape: Shape,
    /// How long green must hold 100% before blue is retired.
    pub keep_alive_ms: Millis,
    /// How often gates are read while waiting.
    pub poll_ms: Millis,
    /// How long green may take to become healthy before the deployment rolls back.
    pub green_healthy_timeout_ms: Millis,
}

impl Strategy {
    /// Parse a strategy file's text. `name` is what it is called in output.
    pub fn parse(name: &str, file: &SourceFile) -> Result<Strategy, InputError> {
        let raw: RawStrategy = toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?;
        if let Some(n) = &raw.name {
            return Err(file.error(
                n.span(),
                "name",
                "a strategy file cannot name another strategy; give its steps here",
            ));
        }
        if let Some(f) = &raw.file {
            return Err(file.error(
                f.span(),
                "file",
                "a strategy file cannot point at another file; give its steps here",
            ));
        }
        raw.validate(name, file, "", None)
    }

    /// The blue/green steps, or `None` for a rolling strategy.
    pub fn steps(&self) -> Option<&[Step]> {
        match &self.shape {
            Shape::BlueGreen { steps } => Some(steps),
            Shape::Rolling(_) => None,
        }
    }

    /// Human lines describing the expansion, one per step.
    pub fn describe_steps(&self) -> Vec<String> {
        match &self.shape {
            Shape::BlueGreen { steps } => steps
                .iter()
                .map(|s| {
                    let step = if s.bake_ms > 0 {
                        format!("{}% for {}", s.weight, fmt_ms(s.bake_ms))
                    } else {
                        format!("{}%", s.weight)
                    };
                    format!("{step}{}", describe_approval(s.approve))
                })
                .collect(),
            Shape::Rolling(r) if r.step.is_some() => vec![format!(
                "rolling update (min healthy {}%, max {}%) with a checkpoint every {}% held {}, then bake {}{}",
                r.min_healthy_percent,
                r.max_percent,
                r.step.unwrap_or(100),
                fmt_ms(r.bake_ms),
                fmt_ms(r.bake_ms),
                describe_approval(r.approve)
            )],
            Shape::Rolling(r) => vec![format!(
                "rolling update (min healthy {}%, max {}%), then bake {}{}",
                r.min_healthy_percent,
                r.max_percent,
                fmt_ms(r.bake_ms),
                describe_approval(r.approve)
            )],
        }
    }
}

/// `, then wait for approval (4h, then rollback)`, or nothing.
fn describe_approval(a: Option<Approval>) -> String {
    match a {
        None => String::new(),
        Some(Approval {
            timeout_ms: None, ..
        }) => ", then wait for approval".into(),
        Some(Approval {
            timeout_ms: Some(t),
            on_timeout,
        }) => format!(
            ", then wait for approval ({}, then {})",
            fmt_ms(t),
            on_timeout.name()
        ),
    }
}

/// Expand a linear strategy: `step`%, 2×`step`%, ... each baked `interval`,
/// then 100% (a last partial step is rounded up to 100).
///
/// ```
/// use teal::strategy::expand_linear;
/// let weights: Vec<u8> = expand_linear(30, 60_000).iter().map(|s| s.weight).collect();
/// assert_eq!(weights, [30, 60, 90, 100]);
/// ```
pub fn expand_linear(step: u8, interval_ms: Millis) -> Vec<Step> {
    assert!((1..=100).contains(&step));
    let mut steps: Vec<Step> = (1..)
        .map(|i| u32::from(step) * i)
        .take_while(|w| *w < 100)
        .map(|w| Step::new(w as u8, interval_ms))
        .collect();
    steps.push(Step::new(100, 0));
    steps
}

/// Expand a canary strategy: `percent`% for `bake`, then 100%.
pub fn expand_canary(percent: u8, bake_ms: Millis) -> Vec<Step> {
    vec![Step::new(percent, bake_ms), Step::new(100, 0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_expands_to_even_steps_ending_at_100() {
        let s = expand_linear(10, 60_000);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], Step::new(10, 60_000));
        assert_eq!(s[8], Step::new(90, 60_000));
        assert_eq!(s[9], Step::new(100, 0));
        let odd: Vec<u8> = expand_linear(30, 1).iter().map(|s| s.weight).collect();
        assert_eq!(odd, vec![30, 60, 90, 100]);
        assert_eq!(expand_linear(100, 5).len(), 1);
    }

    #[test]
    fn canary_has_two_steps() {
        assert_eq!(
            expand_canary(10, 300_000)
                .iter()
                .map(|s| s.weight)
                .collect::<Vec<_>>(),
            vec![10, 100]
        );
    }
}
