//! The config becomes the engine's [`Plan`]: the strategy's steps with the
//! gates' and hooks' settings, once the strategy is known to fit the fleet,
//! the router and the hooks. Kept apart from parsing because only the
//! commands that start a deployment ask it (`plan`, `verify`, `deploy`): a
//! `rollback` of a recorded deployment must not be refused because the file
//! changed meanwhile. Errors are located like every other config error.

use super::{Config, FleetConfig};
use crate::diag::{InputError, SourceFile};
use crate::engine::{Judging, Plan};
use crate::hooks::HookPoint;
use crate::model::fmt_ms;
use crate::strategy::{Rolling, Shape, Step};
use std::collections::BTreeMap;
use std::ops::Range;

/// Where the sections a plan cross-checks were written, to locate its errors.
#[derive(Debug, Clone)]
pub(crate) struct Spans {
    /// The config file itself.
    pub file: SourceFile,
    /// `[fleet]`.
    pub fleet: Range<usize>,
    /// `[strategy]`, when the strategy is the file's own (not `--strategy`).
    pub strategy: Option<Range<usize>>,
    /// `router.test_listener_arn`, when set.
    pub test_listener: Option<Range<usize>>,
    /// Each configured hook.
    pub hooks: BTreeMap<HookPoint, Range<usize>>,
    /// `[analysis]`, when there.
    pub analysis: Option<Range<usize>>,
}

impl Config {
    /// The engine's plan for this config.
    pub fn plan(&self) -> Result<Plan, InputError> {
        let rolling = self.rolling()?;
        let steps = match (self.strategy.steps(), rolling) {
            (Some(steps), _) => steps.to_vec(),
            // One 100% step holding the bake: the rolling update's gate-watched wait.
            (None, Some(r)) => vec![Step {
                approve: r.approve,
                ..Step::new(100, r.bake_ms)
            }],
            (None, None) => unreachable!("a strategy has steps or is rolling"),
        };
        if let Some(max) = self.router.max_partial_weight() {
            if let Some(step) = steps.iter().find(|s| s.weight > max && s.weight < 100) {
                return Err(self.strategy_error(format!(
                    "strategy {:?} has a step of {}%: router.kind = {:?} sends green at most \
                     {max}% before it promotes green to all traffic, so every step must be \
                     {max}% or less, then 100%",
                    self.strategy.name,
                    step.weight,
                    self.router.kind()
                )));
            }
        }
        Ok(Plan {
            rolling,
            strategy: self.strategy.name.clone(),
            steps,
            keep_alive_ms: self.strategy.keep_alive_ms,
            poll_ms: self.strategy.poll_ms,
            green_healthy_timeout_ms: self.strategy.green_healthy_timeout_ms,
            insufficient_data: self.gates.insufficient_data,
            hooks: self.hooks.commands.keys().copied().collect(),
            test_traffic: self.router.has_test_traffic(),
            analysis: self.analysis.as_ref().map(|a| Judging {
                late_ms: a.late_ms,
                on_marginal: a.on_marginal,
            }),
        })
    }

    /// An error about the strategy: at `[strategy]` when the file has it,
    /// else at `[fleet]`, the other side of the conflict.
    fn strategy_error(&self, message: String) -> InputError {
        let s = &self.spans;
        match &s.strategy {
            Some(span) => s.file.error(span.clone(), "strategy", message),
            None => s.file.error(s.fleet.clone(), "fleet", message),
        }
    }

    /// The rolling strategy, if it is one, once it fits the fleet, the
    /// router and the hooks.
    fn rolling(&self) -> Result<Option<Rolling>, InputError> {
        let Shape::Rolling(r) = self.strategy.shape else {
            return Ok(None);
        };
        let name = &self.strategy.name;
        if let (Some(_), Some(span)) = (&self.analysis, &self.spans.analysis) {
            return Err(self.spans.file.error(
                span.clone(),
                "analysis",
                format!(
                    "strategy {name:?} is a rolling update: canary analysis compares green's slot \
                     with blue's, and a rolling update replaces instances in one place; use a \
                     blue/green strategy, or leave [analysis] out and gate on alarms"
                ),
            ));
        }
        let asg = matches!(self.fleet, FleetConfig::Asg { .. });
        if r.step.is_some() && !asg {
            return Err(self.strategy_error(format!(
                "strategy {name:?}: rolling.step sets an Auto Scaling instance refresh's \
                 checkpoints; an ECS service or the local provider replaces instances \
                 as min_healthy_percent and max_percent allow, so leave step out"
            )));
        }
        if asg && r.max_percent > u16::from(r.min_healthy_percent) + 100 {
            return Err(self.strategy_error(format!(
                "strategy {name:?}: an instance refresh takes max_percent ({}) at most 100 above \
                 min_healthy_percent ({}); raise min_healthy_percent or lower max_percent",
                r.max_percent, r.min_healthy_percent
            )));
        }
        // The timeout bounds the whole update, checkpoint waits included.
        let held = (r.checkpoints().len().saturating_sub(1) as u64) * r.bake_ms;
        let timeout = self.strategy.green_healthy_timeout_ms;
        if held > 0 && held >= timeout {
            return Err(self.strategy_error(format!(
                "strategy {name:?}: the instance refresh waits {} at each checkpoint before the \
                 last, {} in all, but green_healthy_timeout = {} bounds the whole update, so \
                 it would always time out and roll back; raise green_healthy_timeout well \
                 above {}, or use a larger step or a shorter bake",
                fmt_ms(r.bake_ms),
                fmt_ms(held),
                fmt_ms(timeout),
                fmt_ms(held),
            )));
        }
        if matches!(self.fleet, FleetConfig::Sim { .. }) {
            return Err(self.strategy_error(format!(
                "strategy {name:?} is a rolling update; the simulated provider shifts \
                 traffic only (the simulation suite covers rolling updates)"
            )));
        }
        if matches!(self.fleet, FleetConfig::S3 { .. }) {
            return Err(self.strategy_error(format!(
                "strategy {name:?} is a rolling update; a static site on S3 has no instances \
                 to replace: each revision is a prefix, shifted to with a blue/green strategy"
            )));
        }
        if self.router.test_listener().is_some() {
            let s = &self.spans;
            return Err(s.file.error(
                s.test_listener.clone().unwrap_or(s.fleet.clone()),
                "router.test_listener_arn",
                "applies to blue/green strategies; a rolling update replaces instances in \
                 place and has no test traffic",
            ));
        }
        // Before the update starts and after it has baked; nothing to retire.
        let pointless = [HookPoint::BeforeRetire, HookPoint::AfterTestTraffic];
        if let Some(point) = self.hooks.commands.keys().find(|p| pointless.contains(p)) {
            let s = &self.spans;
            return Err(s.file.error(
                s.hooks.get(point).cloned().unwrap_or(s.fleet.clone()),
                &format!("hooks.{}", point.config_key()),
                format!(
                    "hooks.{} has no point in a rolling update (no second fleet to retire, \
                     no test traffic); a rolling update runs before_traffic (before it starts) \
                     and after_step (once it has baked)",
                    point.config_key()
                ),
            ));
        }
        Ok(Some(r))
    }
}
