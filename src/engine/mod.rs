//! The pure deployment engine.
//!
//! Like `quinn-proto`, it never sleeps, never reads a clock and does no I/O:
//! the driver hands it an [`Observation`] and the time, and it answers the
//! next [`Action`]. Like a kube-rs reconciler it is level-triggered: from the
//! [`Record`] and what it observes *now* it decides what to do, so a fresh
//! process given the ledger's record continues where another one stopped.
//!
//! Phases: provision green → wait until healthy → each step (set weights,
//! bake while gates hold) → keep-alive at 100% → retire blue → done. A failed
//! gate at any point before retirement rolls back.
//!
//! The engine holds these invariants itself (the simulation suite checks them
//! from the outside):
//! - it only asks for weights that sum to 100;
//! - it asks for green weight > 0 only after green was fully healthy, and
//!   its `before-traffic` hook (if any) passed, and while green still has
//!   healthy targets;
//! - it asks to retire blue only after green held 100% for the keep-alive
//!   window (and its `before-retire` hook passed), and to remove green only
//!   when green carries no traffic.
//!
//! Layout, each an `impl Engine` block of its own: this file holds the
//! vocabulary and the shared rules (gates, hooks, phase changes, the
//! decision loop); `blue_green` the blue/green phases; [`rolling`] the
//! rolling update; `approval` the steps that wait for a person;
//! `operator` the operator commands and the inbox;
//! `record` what the ledger stores.

mod approval;
mod blue_green;
mod operator;
mod record;
pub mod rolling;
#[cfg(test)]
mod tests;

pub use record::*;

use crate::analysis::{StepJudgment, Window};
use crate::hooks::{HookPoint, HookRun, HookState};
use crate::model::InsufficientData;
use crate::model::{FleetStatus, GateReading, GateState, Millis, Weights};
use serde::Serialize;

/// What the driver observed, read just before asking the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Router weights, as roles.
    pub weights: Weights,
    /// Green's fleet.
    pub green: FleetStatus,
    /// Blue's fleet.
    pub blue: FleetStatus,
    /// Gate readings; `None` when they could not be read this time. The engine
    /// never advances a step on unread gates.
    pub gates: Option<Vec<GateReading>>,
    /// The state of the hook run [`Engine::pending_hook`] named, if any.
    pub hook: Option<(HookRun, HookState)>,
    /// The test listener's weights, as roles, when the plan has one and
    /// [`Engine::watches_test_traffic`] says so.
    pub test: Option<Weights>,
    /// A rolling update's state (rolling plans only).
    pub rollout: Option<crate::model::RolloutState>,
    /// The judgment of the bake [`Engine::judgment_window`] named, once the
    /// engine waits for one and the data points could be read.
    pub judgment: Option<StepJudgment>,
}

/// What the engine asks the driver to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create green in its slot with this many instances (idempotent).
    ProvisionGreen {
        /// Desired count: blue's current desired count.
        desired: u32,
    },
    /// Set the router's weights, then read them back.
    SetWeights {
        /// The weights.
        weights: Weights,
    },
    /// Start a lifecycle hook (idempotent); its state comes back in the
    /// following observations.
    StartHook {
        /// Which run.
        run: HookRun,
    },
    /// Set the test listener's weights, then read them back.
    SetTestWeights {
        /// The weights.
        weights: Weights,
    },
    /// Start the rolling update (idempotent).
    StartRollout,
    /// Put the previous revision back (rolling).
    RevertRollout,
    /// Remove green's fleet (rollback).
    RemoveGreen,
    /// Remove blue's fleet (retirement).
    RetireBlue,
    /// Nothing to do until `until` (or the next gate poll, if sooner).
    Wait {
        /// The time to observe again at the latest.
        until: Millis,
    },
    /// The deployment has ended.
    Finish {
        /// How.
        outcome: Outcome,
    },
}

/// A manual input from an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Set green's weight by hand; pauses automatic progress.
    Shift {
        /// Percent of traffic to green.
        green: u8,
        /// Failing gates do not roll back while this hold lasts (`--ignore-gates`).
        #[serde(default)]
        ignore_gates: bool,
    },
    /// Stop automatic progress; gates still watched.
    Pause,
    /// Continue automatic progress from the current step (its bake restarts).
    Resume,
    /// Go to the next step now.
    Promote,
    /// Go to 100% green now; the keep-alive still applies.
    PromoteFull,
    /// Roll back now.
    Rollback,
    /// Retire blue now, skipping the rest of the keep-alive; only once green
    /// holds 100%.
    Retire,
    /// Let a step waiting for approval go on.
    Approve,
}

impl Command {
    /// The command as the operator typed it (`shift`, `promote --full`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Command::Shift { .. } => "shift",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::PromoteFull => "promote --full",
            Command::Rollback => "rollback",
            Command::Retire => "retire",
            Command::Approve => "approve",
        }
    }
}

/// Why the engine refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {command} while the deployment is {phase}: {why}")]
pub struct Refused {
    /// The command.
    pub command: &'static str,
    /// The phase.
    pub phase: &'static str,
    /// Why.
    pub why: &'static str,
}

/// A phase change, for events and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// When.
    pub at: Millis,
    /// The phase left.
    pub from: Phase,
    /// The phase entered.
    pub to: Phase,
}

/// The engine: a record and the rules to advance it.
#[derive(Debug, Clone)]
pub struct Engine {
    rec: Record,
    dirty: bool,
    transitions: Vec<Transition>,
}

/// Transitions taken in one `decide` at most; the rules never loop, this
/// bound only turns a logic bug into a panic instead of a hang.
const MAX_TRANSITIONS_PER_DECISION: usize = 16;

impl Engine {
    /// An engine continuing `rec`.
    pub fn new(rec: Record) -> Engine {
        Engine {
            rec,
            dirty: false,
            transitions: Vec::new(),
        }
    }

    /// The current record.
    pub fn record(&self) -> &Record {
        &self.rec
    }

    /// Note what the ledger now holds: this lock, at this version. Neither is
    /// a change of the deployment, so the record does not become dirty.
    pub fn stored(&mut self, lock: Option<Lock>, version: u64) {
        self.rec.lock = lock;
        self.rec.version = version;
        self.dirty = false;
    }

    /// Whether the record changed since it was last stored.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// A new process takes this deployment over at `now`. When the process
    /// before it died holding the lock (`lapsed`), the clock of what teal
    /// was waiting for and never saw restarts: green's health if green was
    /// never seen, a rolling update's timeout if the update was never seen
    /// under way (the dead process may have died before asking for it). The
    /// time teal was down is not time the platform had. A lock released in
    /// good order (a `reconcile --once` pass) restarts nothing: between passes
    /// the platform's clock runs, or a platform that never takes the update
    /// would never time out.
    pub fn taken_over(&mut self, now: Millis, lapsed: bool) {
        if !lapsed {
            return;
        }
        match self.rec.phase {
            Phase::Provisioning {
                green_seen: None, ..
            } => {
                self.rec.phase = Phase::Provisioning {
                    since: now,
                    green_seen: None,
                };
                self.touch(now);
            }
            Phase::Updating {
                started: true,
                seen: false,
                completed,
                ..
            } => {
                self.rec.phase = Phase::Updating {
                    since: now,
                    started: true,
                    seen: false,
                    completed,
                };
                self.touch(now);
            }
            _ => {}
        }
    }

    /// Phase changes since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    /// The weights the engine wants right now, if it wants particular ones.
    pub fn target(&self) -> Option<Weights> {
        match &self.rec.phase {
            Phase::Provisioning { .. } => Some(Weights::ALL_BLUE),
            Phase::Shifting { step, .. } => Some(match self.rec.hold {
                Some(Hold::Manual { green, .. }) => Weights::to_green(green),
                _ => Weights::to_green(self.rec.plan.steps[*step].weight),
            }),
            Phase::KeepAlive { .. } | Phase::Retiring => Some(Weights::ALL_GREEN),
            _ if self.rec.plan.rolling.is_some() => None,
            Phase::RollingBack { .. } | Phase::Halting { .. } => Some(Weights::ALL_BLUE),
            Phase::Done { .. } | Phase::Updating { .. } => None,
        }
    }

    /// The hook run this phase waits on (or will), for the driver to report
    /// in the next observation; `None` when none is configured or it passed.
    pub fn pending_hook(&self) -> Option<HookRun> {
        let unpassed = |run: HookRun| {
            (self.rec.plan.hooks.contains(&run.point) && !self.rec.hooks_passed.contains(&run))
                .then_some(run)
        };
        let run = match self.rec.phase {
            Phase::Provisioning { .. } => {
                return unpassed(HookRun::at(HookPoint::AfterTestTraffic))
                    .or_else(|| unpassed(HookRun::at(HookPoint::BeforeTraffic)))
            }
            Phase::Shifting { step, .. } => HookRun::after_step(step),
            Phase::KeepAlive { .. } => HookRun::at(HookPoint::BeforeRetire),
            // A rolling update: before it starts, and once it has baked.
            Phase::Updating { started: false, .. } => HookRun::at(HookPoint::BeforeTraffic),
            Phase::Updating {
                completed: Some(_), ..
            } => HookRun::after_step(0),
            _ => return None,
        };
        unpassed(run)
    }

    /// The bake whose judgment the engine waits for now, for the driver to
    /// judge and report in the next observation: the current step's, once
    /// its weights were read back, when the plan has analysis and the step
    /// sends traffic to both (a 100% step leaves blue nothing to compare).
    pub fn judgment_window(&self) -> Option<Window> {
        self.rec.plan.analysis?;
        let Phase::Shifting {
            step,
            reached: Some(from),
        } = self.rec.phase
        else {
            return None;
        };
        if matches!(self.rec.hold, Some(Hold::Manual { .. })) {
            return None;
        }
        let s = &self.rec.plan.steps[step];
        (s.weight > 0 && s.weight < 100).then_some(Window {
            step,
            from,
            to: from + s.bake_ms,
        })
    }

    /// Since when green's data points count against the analysis's absolute
    /// bounds: while green carries traffic at a confirmed weight.
    pub fn bounds_since(&self) -> Option<Millis> {
        self.rec.plan.analysis?;
        match self.rec.phase {
            Phase::Shifting {
                reached: Some(at), ..
            }
            | Phase::KeepAlive { since: Some(at) } => Some(at),
            _ => None,
        }
    }

    /// Until when the engine will act on nothing but the gates (and canary
    /// analysis, read with them) unless the facts change: a step's bake
    /// after its weights were read back, or the keep-alive, with no hold.
    /// The driver may answer weights, fleets and the inbox from an earlier
    /// read until then (within its staleness bound); a decision at or past
    /// this time, or any action, is made on a fresh read.
    pub fn quiet_until(&self) -> Option<Millis> {
        if self.rec.hold.is_some() || self.rec.plan.rolling.is_some() {
            return None;
        }
        match self.rec.phase {
            Phase::Shifting {
                step,
                reached: Some(at),
            } => Some(at + self.rec.plan.steps[step].bake_ms),
            Phase::KeepAlive { since: Some(at) } => Some(at + self.rec.plan.keep_alive_ms),
            _ => None,
        }
    }

    /// Whether the driver reads the test listener in its observations: while
    /// the deployment is in flight with one. (Every observation, not only the
    /// phases that move it: a gate can turn any phase into a rollback within
    /// one decision, and the rollback must find the test listener read.)
    pub fn watches_test_traffic(&self) -> bool {
        self.rec.plan.test_traffic && !self.rec.phase.is_done()
    }

    /// `Ok` when `run`'s hook is not configured or has passed; otherwise what
    /// to do about it: start it, wait for it, or (`Err(None)`, it failed)
    /// nothing, the engine having turned to rolling back.
    fn hook_passed(
        &mut self,
        run: HookRun,
        obs: &Observation,
        now: Millis,
        poll_at: Millis,
    ) -> Result<(), Option<Action>> {
        if !self.rec.plan.hooks.contains(&run.point) || self.rec.hooks_passed.contains(&run) {
            return Ok(());
        }
        let state = obs
            .hook
            .as_ref()
            .filter(|(r, _)| *r == run)
            .map(|(_, s)| s.clone());
        match state {
            Some(HookState::Passed { .. }) => {
                self.rec.hooks_passed.push(run);
                self.touch(now);
                Ok(())
            }
            Some(HookState::Failed { detail, .. }) => {
                let reason = Reason::HookFailed {
                    hook: run.to_string(),
                    detail,
                    at: now,
                };
                self.go(Phase::RollingBack { reason }, now);
                Err(None)
            }
            Some(HookState::Running) => Err(Some(Action::Wait { until: poll_at })),
            Some(HookState::NotStarted) | None => Err(Some(Action::StartHook { run })),
        }
    }

    fn go(&mut self, to: Phase, now: Millis) {
        let from = std::mem::replace(&mut self.rec.phase, to.clone());
        self.rec.updated_at = now;
        self.dirty = true;
        self.transitions.push(Transition { at: now, from, to });
    }

    fn touch(&mut self, now: Millis) {
        self.rec.updated_at = now;
        self.dirty = true;
    }

    fn finish(&mut self, outcome: Outcome, now: Millis) {
        self.go(Phase::Done { outcome, at: now }, now);
    }

    /// The first gate that counts as failed, as a reason.
    fn failing_gate(&self, obs: &Observation, now: Millis) -> Option<Reason> {
        if let Some(Hold::Manual {
            ignore_gates: true, ..
        }) = self.rec.hold
        {
            return None;
        }
        let failed = |g: &&GateReading| match g.state {
            GateState::Alarm => true,
            GateState::InsufficientData => {
                self.rec.plan.insufficient_data == InsufficientData::Alarm
            }
            GateState::Ok => false,
        };
        obs.gates
            .as_ref()?
            .iter()
            .find(failed)
            .map(|g| Reason::GateFailed {
                gate: g.name.clone(),
                state: g.state,
                detail: g.reason.clone(),
                since: g.since,
                seen_at: now,
            })
    }

    /// Decide the next action from what was observed at `now`.
    pub fn decide(&mut self, obs: &Observation, now: Millis) -> Action {
        for _ in 0..MAX_TRANSITIONS_PER_DECISION {
            if let Some(action) = self.decide_once(obs, now) {
                return action;
            }
        }
        panic!(
            "engine took {MAX_TRANSITIONS_PER_DECISION} transitions in one decision: {:?}",
            self.rec.phase
        );
    }
}
