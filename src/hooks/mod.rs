//! Lifecycle hooks: commands teal runs at fixed points of a deployment, the
//! way CodeDeploy runs its lifecycle event hooks. A hook that exits non-zero,
//! or runs past its timeout, is a failed gate: the deployment rolls back.
//!
//! The points:
//! - `after-test-traffic`: green is healthy and the ALB test listener
//!   (`router.test_listener_arn`) forwards to it alone;
//! - `before-traffic`: green is healthy and carries no production traffic yet
//!   (a smoke test of green alone);
//! - `after-step`: after each step's bake, before the next step (the last
//!   step's runs before the keep-alive);
//! - `before-retire`: the keep-alive is over, blue is still there.
//!
//! The engine asks for a hook run ([`crate::engine::Action::StartHook`]) and
//! reads its [`HookState`] in every observation, so the gates are polled as
//! usual while a hook runs; a failing gate wins. A run that passed is kept in
//! the record; one that was running in a process that died is started again
//! by the next one (hooks must be safe to repeat, as CodeDeploy's are).
//!
//! This module is vocabulary only; [`crate::runner::CommandHooks`] runs
//! hooks as child processes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a hook's command is written in `teal.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HookCommand {
    /// `"curl -fsS http://..."`: run with `sh -c`.
    Shell(String),
    /// `["./smoke.sh", "--fast"]`: the program and its arguments.
    Argv(Vec<String>),
}

impl std::fmt::Display for HookCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookCommand::Shell(s) => f.write_str(s),
            HookCommand::Argv(v) => f.write_str(&v.join(" ")),
        }
    }
}

/// A point in a deployment where a hook may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPoint {
    /// The test listener points at green; no production traffic yet.
    AfterTestTraffic,
    /// Green healthy, before any production traffic moves to it.
    BeforeTraffic,
    /// After each step's bake, before the next step.
    AfterStep,
    /// After the keep-alive, before blue is retired.
    BeforeRetire,
}

impl HookPoint {
    /// Every point, in lifecycle order.
    pub const ALL: [HookPoint; 4] = [
        HookPoint::AfterTestTraffic,
        HookPoint::BeforeTraffic,
        HookPoint::AfterStep,
        HookPoint::BeforeRetire,
    ];

    /// Its name in output and in `TEAL_HOOK` (`before-traffic`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HookPoint::AfterTestTraffic => "after-test-traffic",
            HookPoint::BeforeTraffic => "before-traffic",
            HookPoint::AfterStep => "after-step",
            HookPoint::BeforeRetire => "before-retire",
        }
    }

    /// Its key in `[hooks]` of `teal.toml` (`before_traffic`, ...).
    pub fn config_key(self) -> &'static str {
        match self {
            HookPoint::AfterTestTraffic => "after_test_traffic",
            HookPoint::BeforeTraffic => "before_traffic",
            HookPoint::AfterStep => "after_step",
            HookPoint::BeforeRetire => "before_retire",
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One run of a hook: its point and, for `after-step`, the step (0-based).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HookRun {
    /// The point.
    pub point: HookPoint,
    /// The step, for `after-step`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

impl HookRun {
    /// A run at `point` (not `after-step`).
    pub fn at(point: HookPoint) -> HookRun {
        HookRun { point, step: None }
    }

    /// The `after-step` run of `step`.
    pub fn after_step(step: usize) -> HookRun {
        HookRun {
            point: HookPoint::AfterStep,
            step: Some(step),
        }
    }
}

impl fmt::Display for HookRun {
    /// `before-traffic`, or `after-step 2` (1-based, as steps are shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(step) => write!(f, "{} {}", self.point, step + 1),
            None => write!(f, "{}", self.point),
        }
    }
}

/// What the hook runner knows of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HookState {
    /// This process has not started it.
    NotStarted,
    /// Started, not finished.
    Running,
    /// Exited 0.
    Passed {
        /// How long it ran.
        took_ms: u64,
    },
    /// Exited non-zero, could not start, or timed out.
    Failed {
        /// What happened, with the end of its output.
        detail: String,
        /// How long it ran.
        took_ms: u64,
    },
}

/// What a hook is told, as `TEAL_*` environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFacts {
    /// `TEAL_DEPLOYMENT`
    pub deployment: String,
    /// `TEAL_SERVICE`
    pub service: String,
    /// `TEAL_REVISION`: green's.
    pub revision: String,
    /// `TEAL_BLUE_REVISION`, when known.
    pub blue_revision: Option<String>,
    /// `TEAL_GREEN_SLOT` (`a` or `b`).
    pub green_slot: String,
    /// `TEAL_STRATEGY`
    pub strategy: String,
    /// `TEAL_STEP` (1-based; 0 before the first) and `TEAL_STEPS`.
    pub step: usize,
    /// Number of steps.
    pub steps: usize,
    /// `TEAL_GREEN_WEIGHT`: percent of production traffic on green now.
    pub green_weight: u8,
}

impl HookFacts {
    /// The environment variables for `run`.
    pub fn env(&self, run: &HookRun) -> Vec<(String, String)> {
        let mut env = vec![
            ("TEAL_HOOK", run.point.name().to_string()),
            ("TEAL_DEPLOYMENT", self.deployment.clone()),
            ("TEAL_SERVICE", self.service.clone()),
            ("TEAL_REVISION", self.revision.clone()),
            ("TEAL_GREEN_SLOT", self.green_slot.clone()),
            ("TEAL_STRATEGY", self.strategy.clone()),
            ("TEAL_STEP", self.step.to_string()),
            ("TEAL_STEPS", self.steps.to_string()),
            ("TEAL_GREEN_WEIGHT", self.green_weight.to_string()),
        ];
        if let Some(blue) = &self.blue_revision {
            env.push(("TEAL_BLUE_REVISION", blue.clone()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}
