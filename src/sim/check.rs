//! The safety invariants of DESIGN.md, checked from the outside: from what the
//! simulated cloud saw happen, never from the driver's own beliefs.
//!
//! | # | invariant | checked as |
//! |---|---|---|
//! | 1 | weights valid, never 100% at nothing | router valid after every step and every applied change; a slot with weight has a fleet |
//! | 2 | green gets weight only when healthy | every applied change that gives a slot weight from 0 finds its fleet fully healthy |
//! | 3 | blue not removed while carrying weight, nor before keep-alive | every removal: weight 0; the original blue's removal finds green at 100% for ≥ keep-alive |
//! | 4 | failed gate → 100% blue within one poll + round trips | every ALARM episode that begins before retirement and lasts past the bound finds blue at 100% by `onset + poll + 12 × max latency + time lost to injected faults` |
//! | 5 | exactly one outcome, in the state it names | the end state matches the outcome and the ledger; `Succeeded` only if no ALARM was seen before retirement |
//! | 6 | killed runs resume to an outcome | the harness kills and resumes; 5 is checked at the end of every run |
//! | 7 | a second run refuses, naming the first | the harness starts a second driver mid-run (scenario) |
//! | 8 | bad input refused before any mutating call | the harness counts mutating calls of refused starts (scenario) |
//! | 10 | the test listener leads and never dangles | green's first production weight comes after the test listener forwarded to green alone; the test listener never forwards to a slot without a fleet |
//! | R | rolling updates | invariant 4 as: an ALARM episode during the update finds the revert asked by the same deadline; invariant 5 as: `Succeeded` only for a completed update never reverted and no ALARM read before the end, `RolledBack` only with the previous revision running; no start after a revert; invariant 9 as: the update starts after a passed `before-traffic` run, and `Succeeded` only after a passed `after-step` run |
//! | A | canary analysis holds its steps | green's weight rises from a judged step (0% < w < 100%) only with the ledger holding a judgment of that step's bake that passed (or was marginal, under a promoting timeout), and that judgment is the one the simulated series give for its window; after a failed judgment green's weight never rises |
//! | S | a weight changed by hand is seen within the staleness bound | every hand change (scenario) is followed by a read of the weights within `driver::facts_max_age(poll) + poll + 12 × max latency + time lost to faults + time waited for the rate limit`, unless a kill or the deployment's end came first |
//! | P | approval steps wait for a person | green's weight rises from a step that waits for approval only with the ledger holding that step's approval; `Succeeded` only with every such step approved (by the operator, or by the timeout of a step whose `on_timeout` is `"promote"`); not in runs with operator commands, which move weights on their own |
//! | Q | a start waits its turn | no call is put off by the rate limit (`ErrorKind::Paced`) before the deployment's first record is stored: a start's checks are several calls that would start over at each put-off, and under a limit a release's running members keep busy they did so without end |
//! | 9 | hooks hold their points | green's first weight comes after a passed `before-traffic` run; the original blue's removal after a passed `before-retire` run (unless `teal retire` skipped it) |

use super::World;
use crate::engine::{Outcome, Phase};
use crate::hooks::{HookPoint, HookRun};
use crate::model::{GateState, Millis, Slot, SlotWeights};

/// What the checker needs to know about the run.
#[derive(Debug, Clone)]
pub struct Context {
    /// The slot blue held at the start.
    pub blue_slot: Slot,
    /// The plan's keep-alive.
    pub keep_alive_ms: Millis,
    /// The plan's gate poll interval.
    pub poll_ms: Millis,
    /// The highest call latency.
    pub latency_max: Millis,
    /// The router's weights when the run started.
    pub initial: SlotWeights,
    /// The plan's hook points.
    pub hooks: Vec<HookPoint>,
    /// An operator's `teal retire` may skip the before-retire hook.
    pub retire_command: bool,
    /// The router has a test listener.
    pub test_traffic: bool,
    /// A rolling update in place (the slot invariants hold trivially; the
    /// rolling ones apply).
    pub rolling: bool,
    /// Canary analysis and its series, when judged steps are checked (not
    /// in runs with operator commands, which move weights on their own).
    pub analysis: Option<super::metrics::SimMetrics>,
    /// Green's weight at each step of the plan.
    pub steps: Vec<u8>,
    /// The steps that wait for approval (invariant P); empty in runs with
    /// operator commands.
    pub approvals: Vec<usize>,
}

/// Incremental checker: call [`Checker::after_step`] after every driver step.
#[derive(Debug)]
pub struct Checker {
    ctx: Context,
    changes_seen: usize,
    removals_seen: usize,
    /// ALARM episodes already reported (gate, onset): once each.
    episodes_failed: Vec<(String, Millis)>,
    /// A rolling update's early start, reported once.
    reported_early_start: bool,
    /// Hand changes of the weights checked so far (invariant S).
    hand_changes_checked: usize,
    /// When the ledger first held a failed judgment (invariant A).
    judgment_failed_at: Option<Millis>,
    /// Put-off calls checked so far (invariant Q).
    put_offs_checked: usize,
    /// Violations found, in words.
    pub violations: Vec<String>,
}

/// Calls between two gate reads at the most (observe, persist, a weight
/// change read back three times), plus the alarm read and the weight write.
pub const ROUND_TRIPS_IN_BOUND: Millis = 12;

impl Checker {
    /// A checker for one run.
    pub fn new(ctx: Context) -> Checker {
        Checker {
            ctx,
            changes_seen: 0,
            removals_seen: 0,
            episodes_failed: Vec::new(),
            reported_early_start: false,
            hand_changes_checked: 0,
            judgment_failed_at: None,
            put_offs_checked: 0,
            violations: Vec::new(),
        }
    }

    fn fail(&mut self, at: Millis, msg: String) {
        self.violations.push(format!("t={at}ms: {msg}"));
    }

    /// Invariant A for one weight change.
    fn check_judged_rise(&mut self, w: &World, c: &super::WeightChange) {
        use crate::analysis::{assess, MarginalAction, StepOutcome};
        let Some(m) = self.ctx.analysis.clone() else {
            return;
        };
        let green = self.ctx.blue_slot.other();
        let (from, to) = (c.from.get(green), c.to.get(green));
        let judged_step = self
            .ctx
            .steps
            .iter()
            .position(|s| *s == from && *s > 0 && *s < 100);
        let Some(step) = judged_step.filter(|_| to > from) else {
            return;
        };
        let record = w
            .ledger
            .as_ref()
            .and_then(|(json, _)| serde_json::from_str::<crate::engine::Record>(json).ok());
        let judgment = record
            .and_then(|r| r.judgment)
            .filter(|j| j.window.step == step);
        let Some(j) = judgment else {
            self.fail(
                c.at,
                format!("invariant A: green went from {from}% to {to}% with no judgment of step {} recorded", step + 1),
            );
            return;
        };
        if self.judgment_failed_at.is_some_and(|t| t <= c.at) {
            self.fail(
                c.at,
                format!("invariant A: green went from {from}% to {to}% after a failed judgment"),
            );
        }
        let allowed = match j.outcome {
            StepOutcome::Pass => true,
            StepOutcome::Marginal => m.spec.on_marginal.action == MarginalAction::Promote,
            StepOutcome::Fail => false,
        };
        if !allowed {
            self.fail(
                c.at,
                format!("invariant A: green went from {from}% to {to}% though step {} was judged {:?}: {}", step + 1, j.outcome, j.summary()),
            );
        }
        let data = m.read(w, j.window.from, w.now);
        let truth = assess::judge_step(&m.spec, &data, green, j.window);
        if truth.outcome != j.outcome
            || truth
                .metrics
                .iter()
                .map(|l| l.green_points)
                .ne(j.metrics.iter().map(|l| l.green_points))
        {
            self.fail(
                c.at,
                format!(
                    "invariant A: step {} was judged {:?} ({}), but its data give {:?} ({})",
                    step + 1,
                    j.outcome,
                    j.summary(),
                    truth.outcome,
                    truth.summary()
                ),
            );
        }
    }

    /// Invariant P for one weight change: a rise from a step that waits for
    /// approval finds the approval in the ledger.
    fn check_approved_rise(&mut self, w: &World, c: &super::WeightChange) {
        let green = self.ctx.blue_slot.other();
        let (from, to) = (c.from.get(green), c.to.get(green));
        let waiting = self
            .ctx
            .approvals
            .iter()
            .copied()
            .find(|&k| self.ctx.steps.get(k) == Some(&from) && from < 100);
        let Some(step) = waiting.filter(|_| to > from) else {
            return;
        };
        if !approved(w, step) {
            self.fail(
                c.at,
                format!(
                    "invariant P: green went from {from}% to {to}% with no approval of step {} recorded",
                    step + 1
                ),
            );
        }
    }

    /// Note a failed judgment in the ledger (invariant A).
    fn note_judgment(&mut self, w: &World) {
        if self.ctx.analysis.is_none() || self.judgment_failed_at.is_some() {
            return;
        }
        let failed = w
            .ledger
            .as_ref()
            .and_then(|(json, _)| serde_json::from_str::<crate::engine::Record>(json).ok())
            .and_then(|r| r.judgment)
            .is_some_and(|j| j.outcome == crate::analysis::StepOutcome::Fail);
        if failed {
            self.judgment_failed_at = Some(w.now);
        }
    }

    /// A rolling update's invariants after a step.
    fn after_rolling_step(&mut self, w: &World) {
        let now = w.now;
        let r = w.rollout.as_ref().expect("a rolling world");
        if r.started_after_revert {
            self.fail(
                now,
                "invariant R: the update was started again after a revert".into(),
            );
        }
        // 9, rolling: the update starts only after its before-traffic hook passed.
        if let Some(first) = r.first_started {
            if !self.hook_passed_by(w, HookPoint::BeforeTraffic, first)
                && !self.reported_early_start
            {
                self.reported_early_start = true;
                self.fail(
                    first,
                    "invariant 9: the update started before its before-traffic hook passed".into(),
                );
            }
        }
        // A failing gate during the update: the revert is asked within the bound.
        let Some(started) = r.started else { return };
        let ended = ended_at(w);
        for g in &w.gates {
            for (onset, end) in alarm_episodes(&g.script) {
                let onset = onset.max(started);
                let deadline = onset
                    + self.ctx.poll_ms
                    + ROUND_TRIPS_IN_BOUND * self.ctx.latency_max
                    + excused_between(w, onset, now);
                let decidable = now >= deadline && end > deadline;
                let over_before = ended.is_some_and(|t| t <= onset)
                    || (r.previous_runs(onset) && r.reverted.is_some_and(|t| t <= onset));
                if !decidable || over_before {
                    continue;
                }
                // The platform's own rollback is a way back too.
                let platform_back = matches!(
                    r.state_at(deadline),
                    crate::model::RolloutState::RollingBack { .. }
                        | crate::model::RolloutState::RolledBack { .. }
                );
                let reported = self.episodes_failed.contains(&(g.name.clone(), onset));
                if !reported
                    && !platform_back
                    && r.reverted.is_none_or(|t| t > deadline)
                    && ended.is_none_or(|t| t > deadline)
                {
                    self.episodes_failed.push((g.name.clone(), onset));
                    let msg = format!(
                        "invariant R: gate {} in ALARM from {onset}ms, but no revert was asked by {deadline}ms",
                        g.name
                    );
                    self.fail(deadline, msg);
                }
            }
        }
    }

    /// S: a weight changed by hand is read by the driver within the bound
    /// of a steady bake (`driver::facts_max_age` after its last full read,
    /// plus the poll that notices, plus round trips and time lost to faults),
    /// unless the process was killed or the deployment ended first.
    fn check_hand_changes(&mut self, w: &World) {
        let poll = self.ctx.poll_ms;
        let bound =
            crate::driver::facts_max_age(poll) + poll + ROUND_TRIPS_IN_BOUND * self.ctx.latency_max;
        while let Some(&at) = w.trace.hand_changes.get(self.hand_changes_checked) {
            // A refresh put off by the rate limit comes that much later.
            let deadline = at + bound + excused_between(w, at, w.now) + paced_since(w, at);
            if w.now < deadline {
                return;
            }
            self.hand_changes_checked += 1;
            let within = |t: &Millis| *t > at && *t <= deadline;
            let read = w.trace.weight_reads.iter().any(within);
            let killed = w.trace.kills.iter().any(|k| *k >= at && *k <= deadline);
            let ended = ended_at(w).is_some_and(|t| t <= deadline);
            if !(read || killed || ended) {
                self.fail(
                    deadline,
                    format!("invariant S: the weights were changed by hand at {at}ms and not read by {deadline}ms"),
                );
            }
        }
    }

    /// Q: no call is put off by the rate limit before the deployment's
    /// first record is stored (a put-off call's time is when it began; the
    /// store's, when it took effect, a call's latency later at least).
    fn check_put_offs(&mut self, w: &World) {
        let first_record = w.trace.ledger_phases.first().map(|(t, _)| *t);
        for (at, op) in &w.trace.put_off[self.put_offs_checked..] {
            if first_record.is_none_or(|r| *at < r) {
                self.fail(
                    *at,
                    format!(
                        "invariant Q: {op} was put off by the rate limit before the \
                         deployment's first record was stored"
                    ),
                );
            }
        }
        self.put_offs_checked = w.trace.put_off.len();
    }

    /// Check everything that became checkable since the last call.
    pub fn after_step(&mut self, w: &World) {
        if self.ctx.rolling {
            self.after_rolling_step(w);
        }
        self.check_hand_changes(w);
        self.check_put_offs(w);
        let now = w.now;
        // 1. Valid weights, and never traffic to a slot without a fleet.
        if !w.router.is_valid() {
            self.fail(
                now,
                format!("invariant 1: router holds invalid weights {}", w.router),
            );
        }
        for s in Slot::BOTH {
            if w.router.get(s) > 0 && w.fleets[s.index()].is_none() {
                self.fail(
                    now,
                    format!(
                        "invariant 1: slot {s} has {}% of traffic but no fleet",
                        w.router.get(s)
                    ),
                );
            }
        }
        if let Some(t) = w.test_router {
            for s in Slot::BOTH {
                if t.get(s) > 0 && w.fleets[s.index()].is_none() {
                    self.fail(
                        now,
                        format!("invariant 10: the test listener forwards to slot {s}, which has no fleet"),
                    );
                }
            }
        }
        let changes = w.trace.weight_changes[self.changes_seen..].to_vec();
        self.note_judgment(w);
        self.changes_seen = w.trace.weight_changes.len();
        for c in changes {
            if !c.to.is_valid() {
                self.fail(
                    c.at,
                    format!("invariant 1: weights set to invalid {}", c.to),
                );
            }
            // 9. Green's first traffic only after its before-traffic hook passed.
            let green = self.ctx.blue_slot.other();
            // 10. ... and after the test listener sent green traffic of its own.
            if self.ctx.test_traffic
                && c.from.get(green) == 0
                && c.to.get(green) > 0
                && !w
                    .trace
                    .test_changes
                    .iter()
                    .any(|(t, tw)| *t <= c.at && tw.get(green) == 100)
            {
                self.fail(
                    c.at,
                    format!(
                        "invariant 10: green got {}% before the test listener pointed at it",
                        c.to.get(green)
                    ),
                );
            }
            if c.from.get(green) == 0
                && c.to.get(green) > 0
                && !self.hook_passed_by(w, HookPoint::BeforeTraffic, c.at)
            {
                self.fail(
                    c.at,
                    format!(
                        "invariant 9: green got {}% before its before-traffic hook passed",
                        c.to.get(green)
                    ),
                );
            }
            self.check_judged_rise(w, &c);
            self.check_approved_rise(w, &c);
            // 2. A slot that starts receiving traffic must be fully healthy.
            for s in Slot::BOTH {
                if c.from.get(s) == 0 && c.to.get(s) > 0 && !c.healthy[s.index()] {
                    self.fail(
                        c.at,
                        format!(
                            "invariant 2: slot {s} got {}% while not healthy",
                            c.to.get(s)
                        ),
                    );
                }
            }
        }
        // 3. Removals.
        let removals = w.trace.removals[self.removals_seen..].to_vec();
        self.removals_seen = w.trace.removals.len();
        for r in removals {
            if r.weight > 0 {
                self.fail(
                    r.at,
                    format!(
                        "invariant 3: slot {} removed while carrying {}%",
                        r.slot, r.weight
                    ),
                );
            }
            if r.slot == self.ctx.blue_slot
                && !self.ctx.retire_command
                && !self.hook_passed_by(w, HookPoint::BeforeRetire, r.at)
            {
                self.fail(
                    r.at,
                    "invariant 9: blue retired before its before-retire hook passed".into(),
                );
            }
            if r.slot == self.ctx.blue_slot
                && r.other_full_for.is_none_or(|d| d < self.ctx.keep_alive_ms)
            {
                self.fail(
                    r.at,
                    format!(
                        "invariant 3: blue retired after green held 100% for {:?}ms, keep-alive is {}ms",
                        r.other_full_for, self.ctx.keep_alive_ms
                    ),
                );
            }
        }
        // 4. Reaction to failed gates.
        let retire_start = retire_start(w);
        for g in &w.gates {
            for (onset, end) in alarm_episodes(&g.script) {
                let deadline = onset
                    + self.ctx.poll_ms
                    + ROUND_TRIPS_IN_BOUND * self.ctx.latency_max
                    + excused_between(w, onset, now);
                let decidable = now >= deadline && end > deadline;
                let retiring = retire_start.is_some_and(|r| r < deadline);
                let finished_before = ended_at(w).is_some_and(|t| t <= onset);
                if !decidable || retiring || finished_before {
                    continue;
                }
                let at_deadline = weights_at(self.ctx.initial, w, deadline);
                if at_deadline.get(self.ctx.blue_slot) != 100 {
                    let msg = format!(
                        "invariant 4: gate {} in ALARM from {onset}ms, but at the deadline {deadline}ms the router held {at_deadline}",
                        g.name
                    );
                    self.fail(deadline, msg);
                }
            }
        }
    }

    /// Whether `point`'s hook is not configured, or a run of it passed by `t`.
    fn hook_passed_by(&self, w: &World, point: HookPoint, t: Millis) -> bool {
        !self.ctx.hooks.contains(&point)
            || w.trace
                .hook_runs
                .iter()
                .any(|r| r.run == HookRun::at(point) && r.passes && r.ends <= t)
    }

    /// Check the end state against the outcome (invariant 5).
    pub fn at_end(&mut self, w: &World, outcome: &Outcome) {
        let (blue, green) = (self.ctx.blue_slot, self.ctx.blue_slot.other());
        let now = w.now;
        if matches!(outcome, Outcome::Succeeded) {
            for step in self.ctx.approvals.clone() {
                if !approved(w, step) {
                    self.fail(
                        now,
                        format!(
                            "invariant P: Succeeded with step {} never approved",
                            step + 1
                        ),
                    );
                }
            }
        }
        if let (true, Some(r)) = (self.ctx.rolling, &w.rollout) {
            match outcome {
                Outcome::Succeeded => {
                    let completed = r.reverted.is_none()
                        && matches!(r.state_at(now), crate::model::RolloutState::Completed);
                    if !completed {
                        self.fail(
                            now,
                            format!(
                                "invariant R: Succeeded but the update is {:?}",
                                r.state_at(now)
                            ),
                        );
                    }
                    // An ALARM read after the outcome was stored (by a later
                    // process that only reports it) did not come in time to
                    // change it; blue/green has the same cut-off (retirement).
                    let end = ended_at(w).unwrap_or(Millis::MAX);
                    if let Some(t) = w.trace.alarms_seen.iter().find(|t| **t < end) {
                        self.fail(
                            *t,
                            "invariant R: an ALARM was read, yet the run Succeeded".into(),
                        );
                    }
                    let validated = !self.ctx.hooks.contains(&HookPoint::AfterStep)
                        || w.trace
                            .hook_runs
                            .iter()
                            .any(|h| h.run == HookRun::after_step(0) && h.passes && h.ends <= now);
                    if !validated {
                        self.fail(
                            now,
                            "invariant 9: Succeeded without a passed after-step run".into(),
                        );
                    }
                }
                Outcome::RolledBack { .. } if !r.previous_runs(now) => {
                    self.fail(
                        now,
                        format!(
                            "invariant R: RolledBack but the update is {:?}",
                            r.state_at(now)
                        ),
                    );
                }
                _ => {}
            }
            return;
        }
        match outcome {
            Outcome::Succeeded => {
                if w.router.get(green) != 100
                    || w.fleets[blue.index()].is_some()
                    || w.fleets[green.index()].is_none()
                {
                    self.fail(
                        now,
                        format!(
                            "invariant 5: Succeeded but router {} blue fleet {:?}",
                            w.router,
                            w.fleets[blue.index()]
                        ),
                    );
                }
                let retire = retire_start(w).unwrap_or(Millis::MAX);
                if let Some(t) = w.trace.alarms_seen.iter().find(|t| **t < retire) {
                    self.fail(
                        *t,
                        "invariant 5: an ALARM was read before retirement, yet the run Succeeded"
                            .to_string(),
                    );
                }
            }
            Outcome::RolledBack { .. } => {
                if w.router.get(blue) != 100
                    || w.fleets[green.index()].is_some()
                    || w.fleets[blue.index()].is_none()
                {
                    self.fail(
                        now,
                        format!(
                            "invariant 5: RolledBack but router {} green fleet {:?}",
                            w.router,
                            w.fleets[green.index()]
                        ),
                    );
                }
            }
            Outcome::Halted { .. } => {
                if w.router.get(blue) != 100 || w.fleets[blue.index()].is_none() {
                    self.fail(now, format!("invariant 5: Halted but router {}", w.router));
                }
            }
        }
        match w.record().map(|r| r.phase) {
            Some(Phase::Done {
                outcome: stored, ..
            }) if stored.class() == outcome.class() => {}
            other => self.fail(
                now,
                format!(
                    "invariant 5: outcome {} but the ledger holds {other:?}",
                    outcome.class()
                ),
            ),
        }
    }
}

/// When the ledger first recorded retirement (or success), if it did.
fn retire_start(w: &World) -> Option<Millis> {
    w.trace
        .ledger_phases
        .iter()
        .find(|(_, p)| p == "retiring" || p == "done:succeeded")
        .map(|(t, _)| *t)
}

/// When the ledger recorded the end, if it did.
fn ended_at(w: &World) -> Option<Millis> {
    w.trace
        .ledger_phases
        .iter()
        .find(|(_, p)| p.starts_with("done:"))
        .map(|(t, _)| *t)
}

/// `[onset, end)` of each ALARM stretch of a gate script.
pub fn alarm_episodes(script: &[(Millis, GateState)]) -> Vec<(Millis, Millis)> {
    let mut out = Vec::new();
    let mut onset = None;
    for (t, s) in script {
        match (s, onset) {
            (GateState::Alarm, None) => onset = Some(*t),
            (GateState::Alarm, Some(_)) => {}
            (_, Some(o)) => {
                out.push((o, *t));
                onset = None;
            }
            (_, None) => {}
        }
    }
    if let Some(o) = onset {
        out.push((o, Millis::MAX));
    }
    out
}

/// Time waited for the rate limit between `from` and now (as sampled).
fn paced_since(w: &World, from: Millis) -> Millis {
    let i = w.trace.paced_log.partition_point(|(time, _)| *time <= from);
    let before = if i == 0 {
        0
    } else {
        w.trace.paced_log[i - 1].1
    };
    w.paced.saturating_sub(before)
}

/// The running total of excused time as of the last call begun by `t`.
fn excused_at(w: &World, t: Millis) -> Millis {
    let i = w.trace.excused_log.partition_point(|(time, _)| *time <= t);
    if i == 0 {
        0
    } else {
        w.trace.excused_log[i - 1].1
    }
}

/// Time lost to injected faults between `from` and `to` (in the checks,
/// `to` is now: faults before the reaction all count, as do the stretches in
/// which no process ran, credited when the next one starts).
fn excused_between(w: &World, from: Millis, to: Millis) -> Millis {
    let at = |t: Millis| excused_at(w, t);
    // Sampled as each call begins, before that call's own fault is added:
    // the sample before `from` leaves out the faults of the call in flight
    // at `from`, which only makes the bound looser by one call. At the upper
    // end the same lag would leave out the last call's fault, a bound
    // tighter than the rule; up to now, the world's running total is exact
    // (seed 3146084: a 5 s timeout of the step's last call was missing).
    let hi = if to >= w.now {
        w.excused.max(at(to))
    } else {
        at(to)
    };
    hi.saturating_sub(at(from)) + unread_after_faults(w, from, to)
}

/// After a gate read that failed (injected faults through every retry), the
/// stretch until the next read began: nobody can react to a gate that
/// cannot be read, and the driver tries again a little later, not at once.
/// Each stretch counts at most the retry cap of the simulated processes.
fn unread_after_faults(w: &World, from: Millis, to: Millis) -> Millis {
    let reads = &w.trace.gate_reads;
    reads
        .windows(2)
        .filter(|p| !p[0].1 && p[0].0 >= from && p[1].0 <= to)
        // A retry's backoff is excused already: only the rest counts.
        .map(|p| {
            let gap = p[1].0 - p[0].0;
            let excused = excused_at(w, p[1].0).saturating_sub(excused_at(w, p[0].0));
            gap.saturating_sub(excused).min(RETRY_CAP_MS)
        })
        .sum()
}

/// The simulated processes' longest backoff (`Retry::max_ms` in the harness).
pub const RETRY_CAP_MS: Millis = 5_000;

/// The router's weights at time `t`, replayed from the trace.
fn weights_at(initial: SlotWeights, w: &World, t: Millis) -> SlotWeights {
    w.trace
        .weight_changes
        .iter()
        .take_while(|c| c.at <= t)
        .last()
        .map_or(initial, |c| c.to)
}

/// Whether the ledger holds an approval of `step`, and one by the timeout
/// only if the step's `on_timeout` promotes and its timeout had passed.
fn approved(w: &World, step: usize) -> bool {
    use crate::strategy::OnTimeout;
    let Some(r) = w.record() else {
        return false;
    };
    let approve = r.plan.steps.get(step).and_then(|s| s.approve);
    r.approvals.iter().any(|a| {
        a.step == step
            && (!a.by.starts_with("on_timeout")
                || approve
                    .is_some_and(|p| p.on_timeout == OnTimeout::Promote && p.timeout_ms.is_some()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimFleet, SimGate};

    const KEEP: Millis = 60_000;

    /// Blue in A at 100%, green (healthy from t=10s) in B; keep-alive 1 min, poll 1s.
    fn world() -> (World, Checker) {
        let mut w = World::new(1, 0, "v1", 2, vec![]);
        w.fleets[1] = Some(SimFleet {
            revision: "v2".into(),
            desired: 2,
            healthy_at: Some(10_000),
        });
        let ctx = Context {
            blue_slot: Slot::A,
            keep_alive_ms: KEEP,
            poll_ms: 1_000,
            latency_max: 100,
            initial: w.router,
            hooks: vec![],
            retire_command: false,
            test_traffic: false,
            rolling: false,
            analysis: None,
            steps: vec![10, 100],
            approvals: vec![],
        };
        (w, Checker::new(ctx))
    }

    fn violated(c: &Checker, invariant: &str) -> bool {
        c.violations.iter().any(|v| v.contains(invariant))
    }

    fn expect_violation(c: &Checker, invariant: &str) {
        assert!(
            violated(c, invariant),
            "expected {invariant:?} among {:?}",
            c.violations
        );
    }

    #[test]
    fn a_correct_run_passes() {
        let (mut w, mut c) = world();
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 0, b: 100 });
        w.now += KEEP;
        w.remove_now(Slot::A);
        c.after_step(&w);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }

    #[test]
    fn traffic_to_an_unhealthy_green_is_caught() {
        let (mut w, mut c) = world();
        w.now = 5_000; // green healthy only from 10s
        w.set_weights_now(SlotWeights { a: 90, b: 10 });
        c.after_step(&w);
        expect_violation(&c, "invariant 2");
    }

    #[test]
    fn retiring_blue_before_the_keep_alive_is_caught() {
        let (mut w, mut c) = world();
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 0, b: 100 });
        w.now += KEEP - 1;
        w.remove_now(Slot::A);
        c.after_step(&w);
        expect_violation(&c, "invariant 3: blue retired after green held 100%");
    }

    #[test]
    fn removing_a_fleet_with_traffic_and_pointing_at_nothing_are_caught() {
        let (mut w, mut c) = world();
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 50, b: 50 });
        w.remove_now(Slot::B);
        c.after_step(&w);
        expect_violation(&c, "invariant 3: slot b removed while carrying 50%");
        expect_violation(&c, "invariant 1: slot b has 50% of traffic but no fleet");
    }

    #[test]
    fn a_slow_rollback_is_caught_and_a_prompt_one_is_not() {
        for (rollback_after, late) in [(900, false), (3_000, true)] {
            let (mut w, mut c) = world();
            w.gates = vec![SimGate {
                name: "5xx".into(),
                script: vec![(30_000, GateState::Alarm)],
            }];
            w.now = 20_000;
            w.set_weights_now(SlotWeights { a: 90, b: 10 });
            w.now = 30_000 + rollback_after;
            w.set_weights_now(SlotWeights { a: 100, b: 0 });
            // Bound: poll 1s + 12 × 100ms = 2.2s after the onset.
            w.now = 40_000;
            c.after_step(&w);
            assert_eq!(
                violated(&c, "invariant 4"),
                late,
                "rollback after {rollback_after}ms: {:?}",
                c.violations
            );
        }
    }

    #[test]
    fn time_lost_to_injected_faults_extends_the_bound() {
        let (mut w, mut c) = world();
        w.gates = vec![SimGate {
            name: "5xx".into(),
            script: vec![(30_000, GateState::Alarm)],
        }];
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 90, b: 10 });
        w.trace.excused_log.push((30_500, 0));
        w.trace.excused_log.push((33_000, 2_000)); // 2s of backoff after a throttled call
        w.now = 34_000;
        w.set_weights_now(SlotWeights { a: 100, b: 0 });
        w.now = 40_000;
        c.after_step(&w);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }

    #[test]
    fn an_outcome_that_disagrees_with_the_world_is_caught() {
        let (mut w, mut c) = world();
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 90, b: 10 });
        c.at_end(&w, &Outcome::Succeeded);
        expect_violation(&c, "invariant 5: Succeeded but router");
        c.at_end(
            &w,
            &Outcome::Halted {
                reason: crate::engine::Reason::BlueGone { at: 0 },
            },
        );
        expect_violation(&c, "invariant 5: Halted but router");
        expect_violation(&c, "but the ledger holds None");
    }

    #[test]
    fn success_after_a_seen_alarm_is_caught() {
        let (mut w, mut c) = world();
        w.now = 20_000;
        w.set_weights_now(SlotWeights { a: 0, b: 100 });
        w.trace.alarms_seen.push(25_000);
        w.now += KEEP;
        w.remove_now(Slot::A);
        c.at_end(&w, &Outcome::Succeeded);
        expect_violation(&c, "an ALARM was read before retirement");
    }

    #[test]
    fn episodes_of_a_flapping_script() {
        let s = [
            (10, GateState::Alarm),
            (20, GateState::Ok),
            (30, GateState::Alarm),
            (35, GateState::Alarm),
        ];
        assert_eq!(alarm_episodes(&s), vec![(10, 20), (30, Millis::MAX)]);
        assert!(alarm_episodes(&[(5, GateState::Ok)]).is_empty());
    }
}
