//! `teal status`: what a deployment is doing, read-only, from any machine.
//!
//! The JSON form (`--output json`) is [`StatusReport`] serialised; its
//! `schema` field is bumped on any incompatible change.

use crate::engine::{Engine, Hold, Lock, Outcome, Phase, Record};
use crate::model::{fmt_ms, fmt_time, FleetStatus, GateReading, Millis, Weights};
use crate::ports::{PortError, Ports};
use serde::Serialize;
use std::fmt::Write;

/// The schema version of [`StatusReport`].
pub const STATUS_SCHEMA: u32 = 1;

/// A deployment as seen now.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// [`STATUS_SCHEMA`].
    pub schema: u32,
    /// When it was read.
    pub at: Millis,
    /// Deployment id.
    pub deployment: String,
    /// The service.
    pub service: String,
    /// Green's revision.
    pub revision: String,
    /// Blue's revision, when known.
    pub blue_revision: Option<String>,
    /// Strategy name.
    pub strategy: String,
    /// Phase name (`provisioning`, `shifting`, `keep_alive`, `retiring`, `rolling_back`, `halting`, `done`).
    pub phase: String,
    /// Step number (1-based) and count, while shifting.
    pub step: Option<(usize, usize)>,
    /// An operator's hold.
    pub hold: Option<Hold>,
    /// Weights the deployment wants (none once done).
    pub weights_set: Option<Weights>,
    /// Weights the router holds.
    pub weights_actual: Weights,
    /// Green's fleet.
    pub green: FleetStatus,
    /// Blue's fleet.
    pub blue: FleetStatus,
    /// Every gate, with its state and since when.
    pub gates: Vec<GateReading>,
    /// What happens next, in words.
    pub next: String,
    /// When, if it is a time.
    pub next_at: Option<Millis>,
    /// Who holds the deployment, until when.
    pub lock: Option<Lock>,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// When it started.
    pub started_at: Millis,
    /// The CodeBuild run that started it (`CODEBUILD_BUILD_ID`, `CODEBUILD_INITIATOR`).
    pub build: Option<crate::pipeline::Build>,
    /// A rolling update's state, read now (rolling deployments only; then
    /// `weights_*`, `green` and `blue` say nothing about it).
    pub rollout: Option<crate::model::RolloutState>,
    /// Canary analysis's last judgment of a bake: per metric, green's and
    /// blue's means, the data points, the test, the verdict.
    pub judgment: Option<crate::analysis::StepJudgment>,
    /// The steps approved so far: which, by whom, when.
    pub approvals: Vec<crate::engine::Approved>,
}

/// Read the deployment's status with read-only calls; `None` when none was ever recorded.
pub async fn read(ports: &Ports) -> Result<Option<StatusReport>, PortError> {
    let Some(rec) = ports.ledger.load().await? else {
        return Ok(None);
    };
    let now = ports.clock.now();
    let weights_actual = ports.router.weights().await?.as_roles(rec.green_slot);
    // A rolling update has one fleet, updated in place: its rollout says it all.
    let (green, blue, rollout) = match (&rec.plan.rolling, &ports.rollout) {
        (Some(_), Some(r)) => (
            FleetStatus::default(),
            FleetStatus::default(),
            Some(r.state(&rec.green()).await?),
        ),
        _ => {
            let mut fleets = ports.fleet.statuses().await?;
            let green = std::mem::take(&mut fleets[rec.green_slot.index()]);
            let blue = std::mem::take(&mut fleets[rec.blue_slot().index()]);
            (green, blue, None)
        }
    };
    let gates = ports.gate.read().await?;
    let (next, next_at) = next(&rec, now);
    let n = rec.plan.steps.len();
    Ok(Some(StatusReport {
        schema: STATUS_SCHEMA,
        at: now,
        deployment: rec.id.clone(),
        service: rec.service.clone(),
        revision: rec.revision.clone(),
        blue_revision: rec.blue_revision.clone(),
        strategy: rec.plan.strategy.clone(),
        phase: rec.phase.name().to_string(),
        step: match rec.phase {
            Phase::Shifting { step, .. } => Some((step + 1, n)),
            _ => None,
        },
        hold: rec.hold,
        weights_set: Engine::new(rec.clone()).target(),
        weights_actual,
        green,
        blue,
        gates,
        next,
        next_at,
        lock: rec.lock.clone(),
        outcome: match &rec.phase {
            Phase::Done { outcome, .. } => Some(outcome.clone()),
            _ => None,
        },
        started_at: rec.started_at,
        build: rec.build.clone(),
        rollout,
        judgment: rec.judgment.clone(),
        approvals: rec.approvals.clone(),
    }))
}

/// What happens next, and when.
fn next(rec: &Record, now: Millis) -> (String, Option<Millis>) {
    let plan = &rec.plan;
    match (&rec.phase, rec.hold) {
        (Phase::Done { outcome, .. }, _) => {
            (format!("nothing: the deployment ended {outcome}"), None)
        }
        (_, Some(Hold::Paused)) => (
            "nothing until `teal resume` (gates are still watched)".into(),
            None,
        ),
        (
            _,
            Some(Hold::Manual {
                green,
                ignore_gates,
            }),
        ) => {
            let gates = if ignore_gates {
                "gates are IGNORED by operator override"
            } else {
                "gates are still watched"
            };
            (format!("held at {green}% by an operator until `teal resume` or `teal promote` ({gates})"), None)
        }
        (_, Some(Hold::Approval { since, until })) => {
            let step = match rec.phase {
                Phase::Shifting { step, .. } => step,
                _ => 0,
            };
            let what = match rec.phase {
                Phase::Shifting { .. } => {
                    format!("step {} ({}% green)", step + 1, plan.steps[step].weight)
                }
                _ => "the rolling update's bake".to_string(),
            };
            let timeout = match (until, plan.steps.get(step).and_then(|s| s.approve)) {
                (Some(at), Some(a)) => format!(
                    "; at {} ({} from now) it will {} on its own",
                    fmt_time(at),
                    fmt_ms(at.saturating_sub(now)),
                    match a.on_timeout {
                        crate::strategy::OnTimeout::Rollback => "roll back",
                        crate::strategy::OnTimeout::Promote => "go on",
                        crate::strategy::OnTimeout::Hold => "keep waiting",
                    }
                ),
                _ => String::new(),
            };
            (
                format!(
                    "waiting since {} ({} ago) for approval of {what}: `teal approve` goes on, \
                     `teal rollback` refuses it{timeout} (gates are still watched)",
                    fmt_time(since),
                    fmt_ms(now.saturating_sub(since)),
                ),
                until,
            )
        }
        (_, Some(Hold::Marginal { since })) => {
            let score = rec
                .judgment
                .as_ref()
                .and_then(|j| j.score)
                .map_or(String::new(), |s| format!(" (score {s:.0})"));
            let on = plan.analysis.map(|a| a.on_marginal);
            match on.and_then(|o| o.timeout_ms.map(|t| (since + t, o.action))) {
                Some((at, action)) => (
                    format!(
                        "held after a marginal analysis judgment{score} until `teal promote` or `teal rollback`; \
                         at {} ({} from now) it will {} on its own (gates are still watched)",
                        fmt_time(at),
                        fmt_ms(at.saturating_sub(now)),
                        match action {
                            crate::analysis::MarginalAction::Rollback => "roll back",
                            crate::analysis::MarginalAction::Promote => "promote",
                        }
                    ),
                    Some(at),
                ),
                None => (
                    format!(
                        "held after a marginal analysis judgment{score} until `teal promote` or `teal rollback` (gates are still watched)"
                    ),
                    None,
                ),
            }
        }
        (Phase::Provisioning { since, green_seen }, _) => {
            let deadline = green_seen.unwrap_or(*since) + plan.green_healthy_timeout_ms;
            (
                format!(
                    "wait for green to be healthy; roll back if it is not by {}",
                    fmt_time(deadline)
                ),
                Some(deadline),
            )
        }
        (
            Phase::Shifting {
                step,
                reached: None,
            },
            _,
        ) => (
            format!("set weights to {}% green", plan.steps[*step].weight),
            None,
        ),
        (
            Phase::Shifting {
                step,
                reached: Some(t),
            },
            _,
        ) => {
            let s = &plan.steps[*step];
            // A judged step goes on once its bake's late data is in and judged.
            let late = match plan.analysis {
                Some(a) if s.weight > 0 && s.weight < 100 => Some(a.late_ms),
                _ => None,
            };
            let at = t + s.bake_ms + late.unwrap_or(0);
            let judged = late.map_or(String::new(), |l| {
                format!(
                    " if canary analysis passes its bake (judged {} after it, for late data)",
                    fmt_ms(l)
                )
            });
            let what = match plan.steps.get(step + 1) {
                Some(s) => format!(
                    "step {}/{}: {}% to green",
                    step + 2,
                    plan.steps.len(),
                    s.weight
                ),
                None => "keep-alive at 100% green".to_string(),
            };
            (
                format!(
                    "{what} at {} ({} from now){judged}",
                    fmt_time(at),
                    fmt_ms(at.saturating_sub(now))
                ),
                Some(at),
            )
        }
        (Phase::KeepAlive { since: Some(t) }, _) => {
            let at = t + plan.keep_alive_ms;
            (
                format!(
                    "retire blue at {} ({} from now)",
                    fmt_time(at),
                    fmt_ms(at.saturating_sub(now))
                ),
                Some(at),
            )
        }
        (Phase::KeepAlive { since: None }, _) => ("set weights to 100% green".into(), None),
        (Phase::Retiring, _) => ("retire blue".into(), None),
        (
            Phase::Updating {
                completed: Some(t), ..
            },
            _,
        ) => {
            let at = t + plan.steps.last().map_or(0, |s| s.bake_ms);
            (
                format!(
                    "succeed at {} ({} from now) unless a gate fails",
                    fmt_time(at),
                    fmt_ms(at.saturating_sub(now))
                ),
                Some(at),
            )
        }
        (Phase::Updating { since, .. }, _) => {
            let deadline = since + plan.green_healthy_timeout_ms;
            (
                format!(
                    "wait for the rolling update to finish; roll back if it has not by {}",
                    fmt_time(deadline)
                ),
                Some(deadline),
            )
        }
        (Phase::RollingBack { reason }, _) => (format!("finish the rollback ({reason})"), None),
        (Phase::Halting { reason }, _) => {
            (format!("put all traffic on blue and stop ({reason})"), None)
        }
    }
}

/// Render a status for people.
pub fn render(s: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "deployment {} of {} {} (blue: {})",
        s.deployment,
        s.service,
        s.revision,
        s.blue_revision.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        out,
        "  started   {} with {}",
        fmt_time(s.started_at),
        s.strategy
    );
    if let Some(b) = &s.build {
        let by = b
            .initiator
            .as_deref()
            .map_or(String::new(), |i| format!(", started by {i}"));
        let _ = writeln!(out, "  build     {}{by}", b.id);
    }
    let step = s
        .step
        .map(|(i, n)| format!(", step {i} of {n}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  phase     {}{step}", s.phase);
    let set = s
        .weights_set
        .map(|w| w.to_string())
        .unwrap_or_else(|| "-".into());
    if let Some(r) = &s.rollout {
        let _ = writeln!(out, "  update    {r}");
    } else {
        let _ = writeln!(out, "  weights   set {set}; actual {}", s.weights_actual);
        let health = |f: &FleetStatus| {
            if f.exists {
                format!("{}/{} healthy", f.healthy, f.desired)
            } else {
                "none".to_string()
            }
        };
        let _ = writeln!(
            out,
            "  green     {}; blue {}",
            health(&s.green),
            health(&s.blue)
        );
    }
    for g in &s.gates {
        let _ = writeln!(
            out,
            "  gate      {} {} since {} ({})",
            g.name,
            g.state,
            fmt_time(g.since),
            g.reason
        );
    }
    if let Some(j) = &s.judgment {
        let score = j
            .score
            .map_or("no score".to_string(), |v| format!("score {v:.0}"));
        let _ = writeln!(
            out,
            "  analysis  step {} judged {} ({score}) over {} to {}",
            j.window.step + 1,
            format!("{:?}", j.outcome).to_uppercase(),
            fmt_time(j.window.from),
            fmt_time(j.window.to)
        );
        for m in &j.metrics {
            let _ = writeln!(out, "            {}", m.text);
        }
    }
    let _ = writeln!(out, "  next      {}", s.next);
    if let Some(l) = &s.lock {
        let _ = writeln!(
            out,
            "  lock      {} until {}",
            l.owner,
            fmt_time(l.expires_at)
        );
    }
    if let Some(o) = &s.outcome {
        let _ = writeln!(out, "  outcome   {o}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(timeout_ms: Option<Millis>) -> Record {
        crate::engine::sample_judged_record(timeout_ms, 1)
    }

    #[test]
    fn a_marginal_hold_says_what_it_waits_for_and_until_when() {
        let (words, at) = next(&held(Some(30 * 60_000)), 240_000);
        assert_eq!(at, Some(180_000 + 30 * 60_000));
        assert!(
            words.starts_with("held after a marginal analysis judgment (score 80) until `teal promote` or `teal rollback`; at ")
                && words.contains("(29m from now) it will roll back on its own"),
            "{words}"
        );
        let (words, at) = next(&held(None), 240_000);
        assert_eq!(at, None);
        assert!(
            words.ends_with("until `teal promote` or `teal rollback` (gates are still watched)"),
            "{words}"
        );
    }

    #[test]
    fn a_judged_step_goes_on_after_its_bake_and_late_data() {
        let mut rec = held(None);
        rec.hold = None;
        let (words, at) = next(&rec, 10_000);
        assert_eq!(at, Some(60_000 + 120_000));
        assert!(
            words
                .contains("if canary analysis passes its bake (judged 2m after it, for late data)"),
            "{words}"
        );
    }
}
