//! What one run found: its report, the outcome judged against what the
//! scenario allows, and the report in words.

use super::*;

/// What happened in one run.
#[derive(Debug)]
pub struct RunReport {
    /// The scenario.
    pub scenario: Scenario,
    /// The outcome, unless refused.
    pub outcome: Option<Outcome>,
    /// The refusal, for bad input.
    pub refused: Option<String>,
    /// Invariant violations found.
    pub violations: Vec<String>,
    /// Every event of every process, in order.
    pub events: Vec<Event>,
    /// Driver steps taken.
    pub steps: usize,
    /// Processes used (1 + kills + give-ups).
    pub processes: usize,
    /// Port calls made.
    pub calls: u64,
}

/// Outcome classes the scenario allows (invariants 5 and 6).
/// `restarted`: some process died or gave up and another took over.
pub(super) fn check_fate(
    sc: &Scenario,
    outcome: &Outcome,
    restarted: bool,
    violations: &mut Vec<String>,
) {
    if let Outcome::Halted { reason } = outcome {
        let allowed = match reason {
            Reason::Interrupted { .. } => sc.interrupt_at_step.is_some(),
            Reason::ProviderFailed { .. } | Reason::WeightsDidNotTake { .. } => sc.has_faults(),
            // Only a process that stopped between a move to blue and its record leaves this.
            Reason::TrafficMovedToBlue { .. } => restarted,
            _ => false,
        };
        if !allowed {
            violations.push(format!(
                "halted without a cause the scenario injected: {reason}"
            ));
        }
        return;
    }
    if let Some(fate) = sc.fate() {
        if outcome.class() != fate {
            violations.push(format!(
                "invariant 6: the scenario fixes the outcome as {fate}, but the run (with {} kill(s)) ended {outcome}",
                sc.kills.len()
            ));
        }
    }
    if let Outcome::RolledBack {
        reason: Reason::GateFailed { gate, since, .. },
    } = outcome
    {
        if let Some(metric) = gate.strip_prefix("analysis:") {
            // A bound of canary analysis: green's point of that period was beyond it.
            let bound = sc.analysis.as_ref().and_then(|m| {
                let i = m.spec.metrics.iter().position(|x| x.check.name == metric)?;
                let max = m.spec.metrics[i].max?;
                Some((m.value(i, Slot::B, *since, true), max))
            });
            if !bound.is_some_and(|(v, max)| v > max) {
                violations.push(format!(
                    "rolled back by {gate}, but green's value of the period from {since} was {bound:?} (value, max)"
                ));
            }
        } else if sc
            .gates
            .iter()
            .all(|g| alarm_episodes(&g.script).is_empty())
            && sc.plan.insufficient_data == InsufficientData::Ok
        {
            violations.push("rolled back by a gate that never failed".into());
        }
    }
}

/// Render a run for people: the scenario, the events, the violations.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let sc = &report.scenario;
    out.push_str(&format!(
        "seed {}: steps {:?}, keep-alive {}ms, poll {}ms, timeout {}ms, healthy after {:?}ms\n",
        sc.seed,
        sc.plan
            .steps
            .iter()
            .map(|s| (s.weight, s.bake_ms))
            .collect::<Vec<_>>(),
        sc.plan.keep_alive_ms,
        sc.plan.poll_ms,
        sc.plan.green_healthy_timeout_ms,
        sc.healthy_after
    ));
    out.push_str(&format!(
        "  faults {:?}, latency {:?}, kills {:?} (wait out lock: {}), SIGTERM at step {:?}, second driver at step {:?}, bad input {:?}\n",
        sc.faults, sc.latency, sc.kills, sc.wait_out_lock, sc.interrupt_at_step, sc.second_driver_at_step, sc.bad_input
    ));
    if !sc.commands.is_empty() || sc.reconcile_every.is_some() {
        out.push_str(&format!(
            "  operator commands {:?} (at driver step, or pass), reconcile --once every {:?}ms\n",
            sc.commands
                .iter()
                .map(|(at, c)| format!("{at}:{}", c.name()))
                .collect::<Vec<_>>(),
            sc.reconcile_every
        ));
    }
    for (i, step) in sc.plan.steps.iter().enumerate() {
        if let Some(a) = step.approve {
            out.push_str(&format!(
                "  step {} waits for approval: timeout {:?}ms, on_timeout {}, approver after {:?}ms\n",
                i + 1,
                a.timeout_ms,
                a.on_timeout.name(),
                sc.approver
            ));
        }
    }
    for g in &sc.gates {
        out.push_str(&format!(
            "  gate {}: {:?}\n",
            g.name,
            g.script
                .iter()
                .map(|(t, s)| (t.saturating_sub(T0), *s))
                .collect::<Vec<_>>()
        ));
    }
    for e in &report.events {
        let t = e.at.saturating_sub(T0);
        out.push_str(&format!(
            "  +{:>9}ms {}\n",
            t,
            serde_json::to_string(&e.kind).unwrap_or_default()
        ));
    }
    match (&report.outcome, &report.refused) {
        (Some(o), _) => out.push_str(&format!(
            "outcome: {o} after {} steps, {} processes, {} calls\n",
            report.steps, report.processes, report.calls
        )),
        (None, Some(r)) => out.push_str(&format!("refused: {r}\n")),
        (None, None) => out.push_str("no outcome\n"),
    }
    for v in &report.violations {
        out.push_str(&format!("VIOLATION {v}\n"));
    }
    out
}
