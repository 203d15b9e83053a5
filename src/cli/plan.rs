//! `teal plan` and `teal strategies`: schedules computed from config alone,
//! with no network and no cloud call.

use super::render::Format;
use super::Failure;
use crate::config::{Config, FleetConfig, InsufficientData, RouterConfig};
use crate::exit::Exit;
use crate::model::{fmt_ms, Millis};
use crate::strategy;
use crate::strategy::{Shape, Strategy};
use serde::Serialize;
use std::fmt::Write;

/// One step of a schedule, times counted from the moment green is healthy.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledStep {
    /// 1-based step number.
    pub step: usize,
    /// Percent of traffic to green.
    pub green: u8,
    /// Percent of traffic to blue.
    pub blue: u8,
    /// Bake time.
    pub bake_ms: Millis,
    /// When the step begins.
    pub starts_at_ms: Millis,
    /// When its bake ends.
    pub ends_at_ms: Millis,
    /// After the bake, a wait for a person's `teal approve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<crate::strategy::Approval>,
}

/// A strategy laid out in time.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// Strategy name.
    pub strategy: String,
    /// Its description.
    pub description: String,
    /// The blue/green steps (empty for rolling).
    pub steps: Vec<ScheduledStep>,
    /// Keep-alive at 100% before blue is retired.
    pub keep_alive_ms: Millis,
    /// When blue is retired, counted from green healthy.
    pub retire_at_ms: Option<Millis>,
    /// Time green may take to become healthy.
    pub green_healthy_timeout_ms: Millis,
    /// Gate poll interval.
    pub poll_ms: Millis,
    /// Rolling update details, for a rolling strategy.
    pub rolling: Option<crate::strategy::Rolling>,
}

impl Schedule {
    /// Lay a strategy out in time.
    pub fn of(s: &Strategy) -> Schedule {
        let mut t = 0;
        let (steps, rolling) = match &s.shape {
            Shape::BlueGreen { steps } => (
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| {
                        let starts = t;
                        t += st.bake_ms;
                        ScheduledStep {
                            step: i + 1,
                            green: st.weight,
                            blue: 100 - st.weight,
                            bake_ms: st.bake_ms,
                            starts_at_ms: starts,
                            ends_at_ms: t,
                            approve: st.approve,
                        }
                    })
                    .collect(),
                None,
            ),
            Shape::Rolling(r) => (vec![], Some(*r)),
        };
        Schedule {
            strategy: s.name.clone(),
            description: s.description.clone(),
            retire_at_ms: rolling.is_none().then_some(t + s.keep_alive_ms),
            steps,
            keep_alive_ms: s.keep_alive_ms,
            green_healthy_timeout_ms: s.green_healthy_timeout_ms,
            poll_ms: s.poll_ms,
            rolling,
        }
    }
}

/// `teal plan` as JSON.
#[derive(Debug, Serialize)]
pub struct PlanReport<'a> {
    /// The service.
    pub service: &'a str,
    /// Config file.
    pub config: String,
    /// Fleet.
    pub fleet: &'a FleetConfig,
    /// Router.
    pub router: &'a RouterConfig,
    /// Gate names.
    pub gates: &'a [String],
    /// How INSUFFICIENT_DATA counts.
    pub insufficient_data: InsufficientData,
    /// The schedule.
    pub schedule: Schedule,
    /// Canary analysis, when configured.
    pub analysis: Option<&'a crate::analysis::AnalysisSpec>,
    /// Who is told of which milestones (a webhook by its label, never its URL).
    pub notify: &'a [crate::config::Target],
    /// What may surprise about the plan (a bake too short for the analysis).
    pub warnings: Vec<String>,
}

/// `[analysis]` in words, one line per metric.
fn describe_analysis(a: &crate::analysis::AnalysisSpec) -> Vec<String> {
    use crate::analysis::mann_whitney::Alternative;
    use crate::analysis::MarginalAction;
    let mut lines = vec![format!(
        "{} metric(s) of both slots, {} periods, judged {} after each bake (late data); \
         score from 0 to 100: pass at {}, marginal at {} ({})",
        a.metrics.len(),
        fmt_ms(a.period_ms),
        fmt_ms(a.late_ms),
        a.scoring.pass,
        a.scoring.marginal,
        match (a.on_marginal.timeout_ms, a.on_marginal.action) {
            (None, _) => "a marginal step waits for `teal promote` or `teal rollback`".to_string(),
            (Some(t), MarginalAction::Rollback) => format!(
                "a marginal step waits {} for a person, then rolls back",
                fmt_ms(t)
            ),
            (Some(t), MarginalAction::Promote) => format!(
                "a marginal step waits {} for a person, then goes on",
                fmt_ms(t)
            ),
        }
    )];
    for m in &a.metrics {
        let c = &m.check;
        let mut what = Vec::new();
        if m.compare {
            let worse = match c.worse {
                Alternative::Greater => "higher",
                Alternative::Less => "lower",
                Alternative::TwoSided => "different",
            };
            what.push(format!(
                "fails if green is surely {worse} than blue (confidence {}, ≥ {} points a slot) by more than {}%",
                c.confidence,
                c.min_points,
                c.allowed_effect * 100.0
            ));
        }
        if let Some(max) = m.max {
            what.push(format!("green above {max} fails at once"));
        }
        if let Some(min) = m.min {
            what.push(format!("green below {min} fails at once"));
        }
        let flags: Vec<&str> = [
            (c.critical, "critical"),
            (c.must_have_data, "must have data"),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        lines.push(format!(
            "{}{flags}: {}; {}",
            c.name,
            what.join("; "),
            m.source.describe()
        ));
    }
    lines
}

/// Render `teal plan` for people.
pub fn render_plan(c: &Config) -> String {
    let s = Schedule::of(&c.strategy);
    let names = c.gates.describe();
    let gates = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    };
    let mut out = String::new();
    let _ = writeln!(out, "plan for {} ({})", c.service, c.path.display());
    let _ = writeln!(out, "  fleet     {}", c.fleet.describe());
    let _ = writeln!(out, "  router    {}", c.router.describe());
    let _ = writeln!(
        out,
        "  gates     {gates}; read every {}, INSUFFICIENT_DATA counts as {}",
        fmt_ms(s.poll_ms),
        match c.gates.insufficient_data {
            InsufficientData::Ok => "OK",
            InsufficientData::Alarm => "ALARM",
        }
    );
    if let Some(a) = &c.analysis {
        for (i, line) in describe_analysis(a).iter().enumerate() {
            let head = if i == 0 {
                "  analysis  "
            } else {
                "            "
            };
            let _ = writeln!(out, "{head}{line}");
        }
    }
    let _ = writeln!(out, "  strategy  {}: {}", s.strategy, s.description);
    if !c.hooks.commands.is_empty() {
        let hooks: Vec<String> = c
            .hooks
            .commands
            .iter()
            .map(|(point, cmd)| format!("{point} `{cmd}`"))
            .collect();
        let _ = writeln!(
            out,
            "  hooks     {}; each may run {}, a failure rolls back",
            hooks.join(", "),
            fmt_ms(c.hooks.timeout_ms)
        );
    }
    for (i, t) in c.notify.targets.iter().enumerate() {
        let head = if i == 0 {
            "  notify    "
        } else {
            "            "
        };
        let which = if t.milestones.len() == crate::events::Milestone::ALL.len() {
            "every milestone".to_string()
        } else {
            t.milestones
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "{head}{}: {which}", t.to.describe());
    }
    let _ = writeln!(out);
    if let Some(r) = &s.rolling {
        let _ = writeln!(
            out,
            "  rolling update in place: keep {}% healthy, up to {}% capacity; then bake {} with gates watched",
            r.min_healthy_percent,
            r.max_percent,
            fmt_ms(r.bake_ms)
        );
        let how = match &c.fleet {
            crate::config::FleetConfig::Local { instances, .. } => {
                let n = crate::local::daemon::batch_size(*instances, r.max_percent);
                format!(
                    "the daemon replaces {n} of {instances} instance{} at a time (the surge max_percent allows): new ones get traffic once healthy, then as many old ones drain and stop",
                    if *instances == 1 { "" } else { "s" }
                )
            }
            crate::config::FleetConfig::Asg { .. } => {
                let checkpoints = r.checkpoints();
                let pauses = if checkpoints.is_empty() {
                    "no checkpoints".to_string()
                } else {
                    format!(
                        "checkpoints at {}, each before the last held {} with gates watched",
                        checkpoints
                            .iter()
                            .map(|c| format!("{c}%"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        fmt_ms(r.bake_ms)
                    )
                };
                let alarms = if c.gates.alarms.len() > crate::aws::autoscaling::refresh::MAX_REFRESH_ALARMS {
                    "the first 10 of the gates' alarms (its limit)"
                } else {
                    "the gates' alarms"
                };
                format!(
                    "an instance refresh to the new launch template version; {pauses}; \
                     {alarms} in its alarm specification, auto rollback on"
                )
            }
            _ => "UpdateService to the new task definition, deployment circuit breaker on (with rollback)".to_string(),
        };
        let _ = writeln!(out, "  how: {how}");
        let _ = writeln!(
            out,
            "  the update must finish within {}; then bake {} with {gates} read every {}",
            fmt_ms(s.green_healthy_timeout_ms),
            fmt_ms(r.bake_ms),
            fmt_ms(s.poll_ms)
        );
        let hooks = &c.hooks.commands;
        if hooks.contains_key(&crate::hooks::HookPoint::BeforeTraffic) {
            let _ = writeln!(out, "  before-traffic runs before the update starts");
        }
        if hooks.contains_key(&crate::hooks::HookPoint::AfterStep) {
            let _ = writeln!(
                out,
                "  after-step runs once the bake is over; it must pass to succeed"
            );
        }
        let _ = writeln!(
            out,
            "  a failed gate, {}a failed update or the time running out puts the previous revision back",
            if hooks.is_empty() { "" } else { "a failed hook, " }
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  green stands up beside blue and must be healthy within {}; then, counting from there:",
        fmt_ms(s.green_healthy_timeout_ms)
    );
    let _ = writeln!(
        out,
        "  {:<11} {:>6} {:>6} {:>9} {:>9}  guarded by",
        "step", "green", "blue", "bake", "from"
    );
    let judged = |green: u8| {
        (c.analysis.is_some() && green > 0 && green < 100).then_some(", then judged against blue")
    };
    for st in &s.steps {
        let _ = writeln!(
            out,
            "  {:<11} {:>5}% {:>5}% {:>9} {:>9}  {gates}{}",
            format!("{}/{}", st.step, s.steps.len()),
            st.green,
            st.blue,
            fmt_ms(st.bake_ms),
            fmt_ms(st.starts_at_ms),
            judged(st.green).unwrap_or("")
        );
        if let Some(a) = st.approve {
            let timeout = match a.timeout_ms {
                Some(t) => format!(" for up to {}, then {}", fmt_ms(t), a.on_timeout.name()),
                None => " for as long as it takes".into(),
            };
            let _ = writeln!(
                out,
                "  {:<11} {:>5}% {:>5}%  then waits for `teal approve`{timeout} (gates still watched; the times below move by the wait)",
                "",
                st.green,
                st.blue,
            );
        }
    }
    let hold_from = s.steps.last().map_or(0, |l| l.ends_at_ms);
    let _ = writeln!(
        out,
        "  {:<11} {:>5}% {:>5}% {:>9} {:>9}  {gates}",
        "keep-alive",
        100,
        0,
        fmt_ms(s.keep_alive_ms),
        fmt_ms(hold_from)
    );
    let _ = writeln!(
        out,
        "  {:<11} {:>33}  (no way back after this)",
        "retire blue",
        fmt_ms(s.retire_at_ms.unwrap_or(0))
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  a failed gate at any point before blue is retired puts 100% back on blue and removes green");
    if let Some(a) = &c.analysis {
        let _ = writeln!(
            out,
            "  a judged step waits {} after its bake, so each adds that to the times above; a failed judgment rolls back like a gate",
            fmt_ms(a.late_ms)
        );
    }
    for w in plan_warnings(c) {
        let _ = writeln!(out, "  warning: {w}");
    }
    out
}

/// What may surprise about the plan: the analysis's timing.
fn plan_warnings(c: &Config) -> Vec<String> {
    match (&c.analysis, c.plan()) {
        (Some(a), Ok(plan)) => a.timing_warnings(&plan.steps),
        _ => vec![],
    }
}

/// Render `teal strategies` for people.
pub fn render_strategies(all: &[Strategy]) -> String {
    let mut out = String::new();
    for s in all {
        let sched = Schedule::of(s);
        let _ = writeln!(out, "{}  {}", s.name, s.description);
        let _ = writeln!(out, "    steps: {}", s.describe_steps().join(", "));
        match sched.retire_at_ms {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "    keep-alive {}, gates every {}, green healthy within {}; blue retired {} after green is healthy",
                    fmt_ms(s.keep_alive_ms),
                    fmt_ms(s.poll_ms),
                    fmt_ms(s.green_healthy_timeout_ms),
                    fmt_ms(r)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "    gates every {}, healthy within {}",
                    fmt_ms(s.poll_ms),
                    fmt_ms(s.green_healthy_timeout_ms)
                );
            }
        }
    }
    out
}

/// `teal strategies`: the built-ins, each with its schedule.
pub(super) fn strategies(format: Format) -> Result<Exit, Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let all = strategy::builtins();
    match format {
        Format::Text => write!(out, "{}", render_strategies(&all))?,
        Format::Json => {
            for s in &all {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "strategy": s, "schedule": Schedule::of(s) })
                )?;
            }
        }
    }
    Ok(Exit::Succeeded)
}

/// `teal plan`: what a deployment would do, refusing what `deploy` would.
pub(super) fn plan(config: &Config, format: Format) -> Result<Exit, Failure> {
    use std::io::Write as _;
    config.plan()?;
    config.check_driving()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => write!(out, "{}", render_plan(config))?,
        Format::Json => {
            let report = PlanReport {
                service: &config.service,
                config: config.path.display().to_string(),
                fleet: &config.fleet,
                router: &config.router,
                gates: &config.gates.alarms,
                insufficient_data: config.gates.insufficient_data,
                schedule: Schedule::of(&config.strategy),
                analysis: config.analysis.as_ref(),
                notify: &config.notify.targets,
                warnings: plan_warnings(config),
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string(&report).map_err(std::io::Error::other)?
            )?;
        }
    }
    Ok(Exit::Succeeded)
}
