//! What the driver reads before each decision: the gates first (a failing
//! one skips the other reads, canary analysis's included), then fleets,
//! weights, hooks and the rollout.

use super::*;
use crate::analysis::{assess, StepJudgment};
use crate::ports::MetricsQuery;

/// What observing has seen, kept between observations.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The last full observation, used while a failing gate skips the other
    /// reads; dropped the moment a change is sent.
    pub(super) last: Option<Observation>,
    /// Each gate's last state, to report changes once.
    pub(super) gate_states: BTreeMap<String, GateState>,
    /// Green's last (healthy, desired), to report changes once.
    pub(super) green_health: Option<(u32, u32)>,
    /// Consecutive polls whose gates could not be read.
    pub(super) unreadable_gate_polls: u32,
    /// Observations made (each reads the gates once).
    pub(super) observations: u64,
    /// The last hook run whose end was reported, so it is reported once.
    pub(super) hook_reported: Option<crate::hooks::HookRun>,
    /// The last rollout state reported, so that changes are reported once.
    pub(super) rollout_state: Option<crate::model::RolloutState>,
    /// The last bake whose judgment was reported, so it is reported once.
    pub(super) judged: Option<crate::analysis::Window>,
    /// When the last full observation (weights, fleets) began.
    pub(super) full_at: Option<Millis>,
    /// While a weight change is unread (sent, or waiting to be, and not read
    /// back): the observation before it. All but its weights still holds, so
    /// a failing gate's rollback reads the weights alone, not every fact.
    pub(super) changing: Option<Observation>,
}

/// In a steady bake or keep-alive ([`crate::engine::Engine::quiet_until`]), weights and
/// fleets are read again once the last read is this old (or one poll, if
/// longer); the gates and the inbox are read every poll. So a change made by
/// hand (a weight, green's health) is seen at most this long plus one poll
/// after it happened. The simulator holds the driver to that bound
/// (invariant S, `sim::check`).
pub const FACTS_MAX_AGE_MS: Millis = 10_000;

/// How old weights and fleets may be in a steady bake at `poll`.
pub fn facts_max_age(poll_ms: Millis) -> Millis {
    FACTS_MAX_AGE_MS.max(poll_ms)
}

impl Driver {
    /// A rolling update's observation: the gates (read already) and the rollout.
    pub(super) async fn observe_rollout(
        &mut self,
        gates: Option<Vec<GateReading>>,
    ) -> Result<Observation, PortError> {
        let rollout = self.io.ports.rollout.clone().ok_or_else(|| {
            PortError::new(
                "rollout.state",
                ErrorKind::Invalid,
                "a rolling deployment needs a fleet that can update in place",
            )
        })?;
        let green = self.engine.record().green();
        let state = port!(read: self.io, "rollout.state", rollout.state(&green))?;
        // Report a change of state, and progress in steps of a tenth.
        let summary = |s: &crate::model::RolloutState| match s {
            crate::model::RolloutState::InProgress { percent, detail } => {
                format!("in_progress {:?} {detail}", percent.map(|p| p / 10))
            }
            other => format!("{other:?}"),
        };
        if self.seen.rollout_state.as_ref().map(summary) != Some(summary(&state)) {
            self.seen.rollout_state = Some(state.clone());
            self.io.emit(EventKind::RolloutState {
                state: state.clone(),
            });
        }
        let hook = self.hook_state();
        let obs = Observation {
            weights: Weights::ALL_BLUE,
            green: FleetStatus::default(),
            blue: FleetStatus::default(),
            gates,
            hook,
            test: None,
            rollout: Some(state),
            judgment: None,
        };
        self.seen.last = Some(obs.clone());
        Ok(obs)
    }

    /// Gates first; when one fails, skip the other reads and answer from the
    /// last full observation, so the rollback is not delayed by them.
    pub(super) async fn observe(&mut self) -> Result<Observation, PortError> {
        self.seen.observations += 1;
        let read = match self.io.preempted.take() {
            // Read by the watch, which kept its own start as the anchor.
            Some(readings) => Ok(readings),
            None => {
                // The gates' cadence runs from when a read begins: retries
                // of a failing read do not push the next read back.
                self.io.last_gate_read = self.io.now();
                port!(self.io, "gate.read", self.io.ports.gate.read())
            }
        };
        // The analysis's bounds are gates too, read in the same breath; its
        // read failing is the gates' read failing (never advance unread).
        // Unless a gate read fails already: the way back needs no analysis,
        // and an unreadable analysis must not hide the alarm read with it.
        let (read, judgment) = match read {
            Ok(g) if g.iter().any(|r| self.gate_fails(r)) => (Ok(g), None),
            Ok(g) => self.read_analysis(g).await,
            Err(e) => (Err(e), None),
        };
        let gates = match read {
            Ok(g) => {
                self.seen.unreadable_gate_polls = 0;
                self.note_gates(&g);
                Some(g)
            }
            Err(e) => {
                self.seen.unreadable_gate_polls += 1;
                if self.seen.unreadable_gate_polls >= MAX_UNREADABLE_GATE_POLLS {
                    return Err(e);
                }
                // Unread gates are not left a whole poll: the next read is
                // due after the retries' longest backoff, if that is sooner.
                let poll = self.engine.record().plan.poll_ms;
                let gap = poll.min(self.io.settings.retry.max_ms);
                self.io.last_gate_read = (self.io.now() + gap).saturating_sub(poll);
                None
            }
        };
        let failing = gates
            .as_ref()
            .is_some_and(|g| g.iter().any(|r| self.gate_fails(r)));
        if failing {
            // Known already: the reads still to make must not be cut short
            // for it, or a failing read could keep the rollback from its facts,
            // nor wait for a rate limit.
            self.io.watch = None;
            self.io.urgent = true;
        }
        // A rolling update always reads the rollout: its way back is one
        // call, and while it goes on the gates may fail for as long as they like.
        if self.engine.record().plan.rolling.is_some() {
            return self.observe_rollout(gates).await;
        }
        if let (true, Some(last)) = (failing, &self.seen.last) {
            let mut obs = last.clone();
            obs.gates = gates;
            return Ok(obs);
        }
        if let (true, Some(before)) = (failing, self.seen.changing.clone()) {
            let green_slot = self.engine.record().green_slot;
            let weights = port!(read: self.io, "router.weights", self.io.ports.router.weights())?;
            return Ok(Observation {
                weights: weights.as_roles(green_slot),
                gates,
                ..before
            });
        }
        // A steady bake: nothing but the gates can make the engine act before
        // its deadline, so the other facts are answered from the last full
        // read while it is younger than the bound.
        let now = self.io.now();
        let age = facts_max_age(self.engine.record().plan.poll_ms);
        let quiet = self.engine.quiet_until().is_some_and(|until| now < until);
        let young = self.seen.full_at.is_some_and(|at| now < at + age);
        if let (true, true, Some(last)) = (quiet, young, &self.seen.last) {
            let mut obs = last.clone();
            obs.gates = gates;
            obs.judgment = judgment;
            obs.hook = self.hook_state();
            return Ok(obs);
        }
        self.seen.full_at = Some(now);
        let green_slot = self.engine.record().green_slot;
        let weights = port!(read: self.io, "router.weights", self.io.ports.router.weights())?
            .as_roles(green_slot);
        let mut fleets = port!(read: self.io, "fleet.statuses", self.io.ports.fleet.statuses())?;
        let green = std::mem::take(&mut fleets[green_slot.index()]);
        let blue = std::mem::take(&mut fleets[green_slot.other().index()]);
        self.note_green(&green);
        let test = match self.engine.watches_test_traffic() {
            true => port!(
                read: self.io,
                "router.test_weights",
                self.io.ports.router.test_weights()
            )?
            .map(|w| w.as_roles(green_slot)),
            false => None,
        };
        let hook = self.hook_state();
        let obs = Observation {
            weights,
            green,
            blue,
            gates,
            hook,
            test,
            rollout: None,
            judgment,
        };
        self.seen.last = Some(obs.clone());
        self.seen.changing = None;
        Ok(obs)
    }

    /// With analysis configured and green carrying traffic: read the data
    /// points, add the bounds' readings to `gates`, and judge the bake the
    /// engine waits on once its late data had time to arrive (reported once).
    async fn read_analysis(
        &mut self,
        mut gates: Vec<GateReading>,
    ) -> (Result<Vec<GateReading>, PortError>, Option<StepJudgment>) {
        let Some(metrics) = self.io.ports.metrics.clone() else {
            return (Ok(gates), None);
        };
        let window = self.engine.judgment_window();
        // Bounds are read only when some metric has one.
        let bounded = metrics
            .spec()
            .metrics
            .iter()
            .any(|m| m.max.is_some() || m.min.is_some());
        let since = self.engine.bounds_since().filter(|_| bounded);
        let Some(from) = window.map(|w| w.from).into_iter().chain(since).min() else {
            return (Ok(gates), None);
        };
        let rec = self.engine.record();
        let green_slot = rec.green_slot;
        let mut revisions = [None, None];
        revisions[green_slot.index()] = Some(rec.revision.clone());
        revisions[green_slot.other().index()] = rec.blue_revision.clone();
        let mut names = [None, None];
        if let Some(last) = &self.seen.last {
            names[green_slot.index()] = last.green.name.clone();
            names[green_slot.other().index()] = last.blue.name.clone();
        }
        let now = self.io.now();
        let query = MetricsQuery {
            from,
            now,
            revisions: [revisions[0].as_deref(), revisions[1].as_deref()],
            names: [names[0].as_deref(), names[1].as_deref()],
        };
        let data = match port!(read: self.io, "metrics.read", metrics.read(query)) {
            Ok(d) => d,
            Err(e) => return (Err(e), None),
        };
        let spec = metrics.spec();
        if let Some(since) = since {
            gates.extend(assess::bounds(spec, &data, green_slot, since));
        }
        let late = rec.plan.analysis.map_or(0, |a| a.late_ms);
        let judgment = window
            .filter(|w| now >= w.to + late)
            .map(|w| assess::judge_step(spec, &data, green_slot, w));
        if let Some(j) = &judgment {
            if self.seen.judged != Some(j.window) {
                self.seen.judged = Some(j.window);
                self.io.emit(EventKind::Judgment {
                    step: j.window.step + 1,
                    outcome: j.outcome,
                    score: j.score,
                    summary: j.summary(),
                    metrics: j.metrics.clone(),
                });
            }
        }
        (Ok(gates), judgment)
    }

    /// The state of the hook run the engine waits on; its end is reported once.
    pub(super) fn hook_state(&mut self) -> Option<(HookRun, HookState)> {
        let run = self.engine.pending_hook()?;
        let state = self.io.ports.hooks.state(&self.engine.record().id, &run);
        let ended = matches!(state, HookState::Passed { .. } | HookState::Failed { .. });
        if ended && self.seen.hook_reported.as_ref() != Some(&run) {
            self.seen.hook_reported = Some(run.clone());
            let (passed, detail, took_ms) = match &state {
                HookState::Passed { took_ms } => (true, String::new(), *took_ms),
                HookState::Failed { detail, took_ms } => (false, detail.clone(), *took_ms),
                _ => unreachable!("ended"),
            };
            self.io.emit(EventKind::HookFinished {
                hook: run.to_string(),
                passed,
                detail,
                took_ms,
            });
        }
        Some((run, state))
    }

    /// The deployment's facts for a hook, as `TEAL_*` variables.
    pub(super) fn hook_env(&self, run: &HookRun, obs: &Observation) -> Vec<(String, String)> {
        let rec = self.engine.record();
        let step = match rec.phase {
            Phase::Shifting { step, .. } => step + 1,
            Phase::KeepAlive { .. } | Phase::Retiring => rec.plan.steps.len(),
            Phase::Updating {
                completed: Some(_), ..
            } => 1,
            _ => 0,
        };
        // A rolling update has no split: the new revision has all the
        // traffic once the update completed, none before it started.
        let green_weight = match rec.phase {
            Phase::Updating { completed, .. } if rec.plan.rolling.is_some() => {
                if completed.is_some() {
                    100
                } else {
                    0
                }
            }
            _ => obs.weights.green,
        };
        HookFacts {
            deployment: rec.id.clone(),
            service: rec.service.clone(),
            revision: rec.revision.clone(),
            blue_revision: rec.blue_revision.clone(),
            green_slot: rec.green_slot.to_string(),
            strategy: rec.plan.strategy.clone(),
            step,
            steps: rec.plan.steps.len(),
            green_weight,
        }
        .env(run)
    }

    pub(super) fn gate_fails(&self, r: &GateReading) -> bool {
        match r.state {
            GateState::Alarm => true,
            GateState::InsufficientData => {
                self.engine.record().plan.insufficient_data == InsufficientData::Alarm
            }
            GateState::Ok => false,
        }
    }

    pub(super) fn note_gates(&mut self, readings: &[GateReading]) {
        for r in readings {
            if self.seen.gate_states.insert(r.name.clone(), r.state) != Some(r.state) {
                self.io.emit(EventKind::Gate {
                    gate: r.name.clone(),
                    state: r.state,
                    reason: r.reason.clone(),
                });
            }
        }
    }

    pub(super) fn note_green(&mut self, green: &FleetStatus) {
        let h = (green.healthy, green.desired);
        if green.exists && self.seen.green_health != Some(h) {
            self.seen.green_health = Some(h);
            self.io.emit(EventKind::GreenHealth {
                healthy: h.0,
                desired: h.1,
            });
        }
    }

    /// Whether the gates are watched during other calls' backoff: while a
    /// failing gate would change what the engine does (provisioning,
    /// shifting, keep-alive, a rolling update), unless an operator's hold
    /// overrides them. Not on the way back to blue or out: a rollback's own
    /// retries must go on whatever the gates say.
    pub(super) fn gate_watch(&self) -> Option<GateWatch> {
        let rec = self.engine.record();
        let watched = matches!(
            rec.phase,
            Phase::Provisioning { .. }
                | Phase::Shifting { .. }
                | Phase::KeepAlive { .. }
                | Phase::Updating { .. }
        );
        let overridden = matches!(
            rec.hold,
            Some(crate::engine::Hold::Manual {
                ignore_gates: true,
                ..
            })
        );
        (watched && !overridden).then_some(GateWatch {
            poll_ms: rec.plan.poll_ms,
            insufficient_data: rec.plan.insufficient_data,
        })
    }
}
