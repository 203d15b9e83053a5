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

mod record;
pub mod rolling;
#[cfg(test)]
mod tests;

pub use record::*;

use crate::model::InsufficientData;
use crate::hooks::{HookPoint, HookRun, HookState};
use crate::model::{FleetStatus, GateReading, GateState, Millis, Weights};
use serde::Serialize;

/// What the driver observed, read just before asking the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    /// One rule application: an action, or `None` after a transition (decide again).
    fn decide_once(&mut self, obs: &Observation, now: Millis) -> Option<Action> {
        if self.rec.plan.rolling.is_some() {
            return self.decide_rolling(obs, now);
        }
        let plan = &self.rec.plan;
        let poll_at = now + plan.poll_ms;
        match self.rec.phase.clone() {
            Phase::Done { outcome, .. } => Some(Action::Finish { outcome }),

            // Past the point of no return: gates no longer matter, blue goes.
            Phase::Retiring => {
                if obs.weights != Weights::ALL_GREEN {
                    Some(Action::SetWeights {
                        weights: Weights::ALL_GREEN,
                    })
                } else if obs.blue.exists {
                    Some(Action::RetireBlue)
                } else {
                    self.go(
                        Phase::Done {
                            outcome: Outcome::Succeeded,
                            at: now,
                        },
                        now,
                    );
                    None
                }
            }

            // The way back to blue, shared by rollback and halt. Never point
            // traffic at nothing: with blue gone, stop and call a person.
            Phase::RollingBack { .. } | Phase::Halting { .. }
                if obs.weights != Weights::ALL_BLUE =>
            {
                if !obs.blue.exists {
                    self.finish(
                        Outcome::Halted {
                            reason: Reason::BlueGone { at: now },
                        },
                        now,
                    );
                    return None;
                }
                Some(Action::SetWeights {
                    weights: Weights::ALL_BLUE,
                })
            }
            // Never leave the test listener pointing at a green about to go.
            Phase::RollingBack { .. }
                if obs.green.exists
                    && obs.blue.exists
                    && obs.test.is_some_and(|t| t != Weights::ALL_BLUE) =>
            {
                Some(Action::SetTestWeights {
                    weights: Weights::ALL_BLUE,
                })
            }
            Phase::RollingBack { .. } if obs.green.exists => Some(Action::RemoveGreen),
            Phase::RollingBack { reason } => {
                self.finish(Outcome::RolledBack { reason }, now);
                None
            }
            Phase::Halting { reason } => {
                self.finish(Outcome::Halted { reason }, now);
                None
            }

            phase => {
                // Gates first: a failed gate wins over everything else.
                if let Some(reason) = self.failing_gate(obs, now) {
                    self.go(Phase::RollingBack { reason }, now);
                    return None;
                }
                if !obs.blue.exists {
                    self.go(
                        Phase::Halting {
                            reason: Reason::BlueGone { at: now },
                        },
                        now,
                    );
                    return None;
                }
                if obs.green.exists
                    && obs
                        .green
                        .revision
                        .as_deref()
                        .is_some_and(|r| r != self.rec.revision)
                {
                    let found = obs.green.revision.clone();
                    self.go(
                        Phase::Halting {
                            reason: Reason::UnexpectedGreen { found, at: now },
                        },
                        now,
                    );
                    return None;
                }
                match phase {
                    Phase::Provisioning { since, green_seen } => {
                        self.provisioning(obs, now, since, green_seen, poll_at)
                    }
                    Phase::Shifting { step, reached } => {
                        self.shifting(obs, now, step, reached, poll_at)
                    }
                    Phase::KeepAlive { since } => self.keep_alive(obs, now, since, poll_at),
                    Phase::Updating { .. } => {
                        unreachable!("rolling phases are decided by decide_rolling")
                    }
                    _ => unreachable!("terminal and rollback phases handled above"),
                }
            }
        }
    }

    /// The rolling strategy: start the update, wait while the platform
    /// replaces instances, bake with gates watched, succeed; on a failed gate
    /// (or a failed update) put the previous revision back.
    fn decide_rolling(&mut self, obs: &Observation, now: Millis) -> Option<Action> {
        use crate::model::RolloutState;
        use rolling::{react, RollingStep};
        let poll_at = now + self.rec.plan.poll_ms;
        let state = obs.rollout.clone().unwrap_or(RolloutState::NotStarted);
        match self.rec.phase.clone() {
            Phase::Done { outcome, .. } => Some(Action::Finish { outcome }),
            Phase::Halting { reason } => {
                self.finish(Outcome::Halted { reason }, now);
                None
            }
            Phase::RollingBack { reason } => match react(&state, false, true) {
                RollingStep::Revert => Some(Action::RevertRollout),
                RollingStep::RolledBack { .. } => {
                    self.finish(Outcome::RolledBack { reason }, now);
                    None
                }
                RollingStep::Halt { reason: why } => {
                    let reason = Reason::RolloutFailed {
                        detail: why,
                        at: now,
                    };
                    self.finish(Outcome::Halted { reason }, now);
                    None
                }
                _ => Some(Action::Wait { until: poll_at }),
            },
            Phase::Updating {
                since,
                started,
                seen,
                completed,
            } => {
                if let Some(reason) = self.failing_gate(obs, now) {
                    self.go(Phase::RollingBack { reason }, now);
                    return None;
                }
                let seen_now = !matches!(state, RolloutState::NotStarted);
                if seen_now && !seen {
                    self.rec.phase = Phase::Updating {
                        since,
                        started,
                        seen: true,
                        completed,
                    };
                    self.touch(now);
                    return None;
                }
                match react(&state, false, false) {
                    // Seen under way, now gone with the old revision back:
                    // the platform undid it (ECS drops finished deployments).
                    RollingStep::Start if seen => {
                        let reason = Reason::PlatformRolledBack {
                            detail: "the previous revision runs again; the platform rolled the update back on its own".into(),
                            at: now,
                        };
                        self.finish(Outcome::RolledBack { reason }, now);
                        None
                    }
                    RollingStep::Start
                        if started && now >= since + self.rec.plan.green_healthy_timeout_ms =>
                    {
                        let reason = Reason::RolloutFailed {
                            detail: format!(
                                "the platform did not take the update in {}",
                                crate::model::fmt_ms(now - since)
                            ),
                            at: now,
                        };
                        self.go(Phase::RollingBack { reason }, now);
                        None
                    }
                    RollingStep::Start => {
                        if !started {
                            let before = HookRun::at(HookPoint::BeforeTraffic);
                            if let Err(action) = self.hook_passed(before, obs, now, poll_at) {
                                return action;
                            }
                            // The timeout bounds the update, not the hook before it.
                            self.rec.phase = Phase::Updating {
                                since: now,
                                started: true,
                                seen,
                                completed,
                            };
                            self.touch(now);
                        }
                        Some(Action::StartRollout)
                    }
                    RollingStep::Wait => {
                        let deadline = since + self.rec.plan.green_healthy_timeout_ms;
                        if now >= deadline {
                            let reason = Reason::RolloutFailed {
                                detail: format!(
                                    "not finished after {}",
                                    crate::model::fmt_ms(now - since)
                                ),
                                at: now,
                            };
                            self.go(Phase::RollingBack { reason }, now);
                            return None;
                        }
                        Some(Action::Wait {
                            until: poll_at.min(deadline),
                        })
                    }
                    RollingStep::Revert => {
                        let detail = match &state {
                            RolloutState::Failed { detail } | RolloutState::Stopped { detail } => {
                                detail.clone()
                            }
                            other => format!("{other:?}"),
                        };
                        let reason = Reason::RolloutFailed { detail, at: now };
                        self.go(Phase::RollingBack { reason }, now);
                        None
                    }
                    RollingStep::RolledBack { reason: detail } => {
                        let reason = Reason::PlatformRolledBack { detail, at: now };
                        self.finish(Outcome::RolledBack { reason }, now);
                        None
                    }
                    RollingStep::Halt { reason: detail } => {
                        let reason = Reason::RolloutFailed { detail, at: now };
                        self.finish(Outcome::Halted { reason }, now);
                        None
                    }
                    RollingStep::Bake => {
                        let Some(done) = completed else {
                            self.go(
                                Phase::Updating {
                                    since,
                                    started,
                                    seen: true,
                                    completed: Some(now),
                                },
                                now,
                            );
                            return None;
                        };
                        let end = done + self.rec.plan.steps.last().map_or(0, |s| s.bake_ms);
                        if self.rec.hold.is_some() || obs.gates.is_none() || now < end {
                            let until = if self.rec.hold.is_some() {
                                poll_at
                            } else {
                                poll_at.min(end.max(now + 1))
                            };
                            return Some(Action::Wait { until });
                        }
                        // Baked: the one step's after-step hook, as for blue/green.
                        let after = HookRun::after_step(0);
                        if let Err(action) = self.hook_passed(after, obs, now, poll_at) {
                            return action;
                        }
                        self.finish(Outcome::Succeeded, now);
                        None
                    }
                }
            }
            other => unreachable!("a rolling deployment is never {}", other.name()),
        }
    }

    fn provisioning(
        &mut self,
        obs: &Observation,
        now: Millis,
        since: Millis,
        green_seen: Option<Millis>,
        poll_at: Millis,
    ) -> Option<Action> {
        if obs.green.exists && green_seen.is_none() {
            self.rec.phase = Phase::Provisioning {
                since,
                green_seen: Some(now),
            };
            self.touch(now);
            return None;
        }
        let clock_start = green_seen.unwrap_or(since);
        let deadline = clock_start + self.rec.plan.green_healthy_timeout_ms;
        if obs.green.fully_healthy() {
            // Green alone behind the test listener, then its hook.
            if self.rec.plan.test_traffic && obs.test != Some(Weights::ALL_GREEN) {
                return Some(Action::SetTestWeights {
                    weights: Weights::ALL_GREEN,
                });
            }
            if let Err(action) =
                self.hook_passed(HookRun::at(HookPoint::AfterTestTraffic), obs, now, poll_at)
            {
                return action;
            }
            // A smoke test of green alone, before any production traffic.
            if let Err(action) =
                self.hook_passed(HookRun::at(HookPoint::BeforeTraffic), obs, now, poll_at)
            {
                return action;
            }
            self.go(
                Phase::Shifting {
                    step: 0,
                    reached: None,
                },
                now,
            );
            return None;
        }
        if now >= deadline {
            let reason = Reason::GreenNeverHealthy {
                healthy: obs.green.healthy,
                desired: obs.green.desired.max(obs.blue.desired),
                waited_ms: now - clock_start,
            };
            self.go(Phase::RollingBack { reason }, now);
            return None;
        }
        if obs.weights != Weights::ALL_BLUE {
            // Green may not carry traffic before it is healthy (invariant 2).
            return Some(Action::SetWeights {
                weights: Weights::ALL_BLUE,
            });
        }
        if !obs.green.exists {
            return Some(Action::ProvisionGreen {
                desired: obs.blue.desired.max(1),
            });
        }
        Some(Action::Wait {
            until: poll_at.min(deadline),
        })
    }

    fn shifting(
        &mut self,
        obs: &Observation,
        now: Millis,
        step: usize,
        reached: Option<Millis>,
        poll_at: Millis,
    ) -> Option<Action> {
        let target = self.target().expect("shifting has a target");
        if target.green > 0 && obs.green.healthy == 0 {
            let reason = Reason::GreenLostHealth {
                healthy: obs.green.healthy,
                desired: obs.green.desired,
                at: now,
            };
            self.go(Phase::RollingBack { reason }, now);
            return None;
        }
        if obs.weights != target {
            if reached.is_some() && obs.weights == Weights::ALL_BLUE && target.green > 0 {
                // Unexplained: a rollback whose record write was lost, a halt
                // during a ledger outage, or a change by hand. Neither send
                // traffic back to green nor destroy it: halt, and call a person.
                self.go(
                    Phase::Halting {
                        reason: Reason::TrafficMovedToBlue {
                            expected: target,
                            at: now,
                        },
                    },
                    now,
                );
                return None;
            }
            if obs.weights.green == 0 && target.green > 0 && !obs.green.fully_healthy() {
                // Back from an operator's 0% to a green that has since lost
                // some targets: wait until green is whole again (invariant 2).
                return Some(Action::Wait { until: poll_at });
            }
            if reached.is_some() {
                // Drift away from a confirmed weight: re-assert it; the bake restarts.
                self.rec.phase = Phase::Shifting {
                    step,
                    reached: None,
                };
                self.touch(now);
            }
            return Some(Action::SetWeights { weights: target });
        }
        let Some(reached) = reached else {
            self.rec.phase = Phase::Shifting {
                step,
                reached: Some(now),
            };
            self.touch(now);
            return None;
        };
        if self.rec.hold.is_some() || obs.gates.is_none() {
            return Some(Action::Wait { until: poll_at });
        }
        let bake_end = reached + self.rec.plan.steps[step].bake_ms;
        if now < bake_end {
            return Some(Action::Wait {
                until: poll_at.min(bake_end),
            });
        }
        if let Err(action) = self.hook_passed(HookRun::after_step(step), obs, now, poll_at) {
            return action;
        }
        if step + 1 < self.rec.plan.steps.len() {
            self.go(
                Phase::Shifting {
                    step: step + 1,
                    reached: None,
                },
                now,
            );
        } else {
            // The last step is 100%: what was just confirmed starts the keep-alive.
            self.go(Phase::KeepAlive { since: Some(now) }, now);
        }
        None
    }

    fn keep_alive(
        &mut self,
        obs: &Observation,
        now: Millis,
        since: Option<Millis>,
        poll_at: Millis,
    ) -> Option<Action> {
        if obs.green.healthy == 0 {
            let reason = Reason::GreenLostHealth {
                healthy: 0,
                desired: obs.green.desired,
                at: now,
            };
            self.go(Phase::RollingBack { reason }, now);
            return None;
        }
        if obs.weights != Weights::ALL_GREEN {
            if since.is_some() && obs.weights == Weights::ALL_BLUE {
                // Unexplained: a rollback whose record write was lost, a halt
                // during a ledger outage, or a change by hand. Neither send
                // traffic back to green nor destroy it: halt, and call a person.
                self.go(
                    Phase::Halting {
                        reason: Reason::TrafficMovedToBlue {
                            expected: Weights::ALL_GREEN,
                            at: now,
                        },
                    },
                    now,
                );
                return None;
            }
            if since.is_some() {
                self.rec.phase = Phase::KeepAlive { since: None };
                self.touch(now);
            }
            return Some(Action::SetWeights {
                weights: Weights::ALL_GREEN,
            });
        }
        let Some(since) = since else {
            self.rec.phase = Phase::KeepAlive { since: Some(now) };
            self.touch(now);
            return None;
        };
        let end = since + self.rec.plan.keep_alive_ms;
        if self.rec.hold.is_some() || obs.gates.is_none() || now < end {
            let until = if self.rec.hold.is_some() {
                poll_at
            } else {
                poll_at.min(end.max(now))
            };
            return Some(Action::Wait { until });
        }
        if let Err(action) =
            self.hook_passed(HookRun::at(HookPoint::BeforeRetire), obs, now, poll_at)
        {
            return action;
        }
        self.go(Phase::Retiring, now);
        None
    }

    /// Apply an operator command at `now`.
    pub fn command(&mut self, cmd: Command, now: Millis) -> Result<(), Refused> {
        if matches!(self.rec.phase, Phase::Updating { .. }) {
            let phase = self.rec.phase.name();
            if let Some(result) = self.rolling_command(cmd, now) {
                return result.map_err(|why| Refused {
                    command: cmd.name(),
                    phase,
                    why,
                });
            }
        }
        let refuse = |why| Refused {
            command: cmd.name(),
            phase: self.rec.phase.name(),
            why,
        };
        let last = self.rec.plan.steps.len() - 1;
        match (&self.rec.phase, cmd) {
            (
                Phase::Done {
                    outcome: Outcome::Halted { .. },
                    ..
                },
                Command::Rollback,
            )
            | (Phase::Halting { .. }, Command::Rollback) => {}
            (Phase::Done { .. }, _) => return Err(refuse("it has ended")),
            (Phase::Retiring, _) => {
                return Err(refuse("blue is being retired; there is no way back"))
            }
            (Phase::RollingBack { .. } | Phase::Halting { .. }, _) => {
                return Err(refuse("traffic is going back to blue"))
            }
            _ => {}
        }
        match cmd {
            Command::Rollback => {
                self.go(
                    Phase::RollingBack {
                        reason: Reason::Operator {
                            command: "rollback".into(),
                            at: now,
                        },
                    },
                    now,
                );
            }
            Command::Shift {
                green,
                ignore_gates,
            } => {
                if green > 100 {
                    return Err(refuse("a weight is 0..=100"));
                }
                if green > 0 && matches!(self.rec.phase, Phase::Provisioning { .. }) {
                    // Invariant 2: no traffic to a green not yet seen healthy.
                    return Err(refuse("green is not healthy yet"));
                }
                self.rec.hold = Some(Hold::Manual {
                    green,
                    ignore_gates,
                });
                match self.rec.phase {
                    Phase::KeepAlive { .. } => self.go(
                        Phase::Shifting {
                            step: last,
                            reached: None,
                        },
                        now,
                    ),
                    Phase::Shifting { step, .. } => {
                        self.rec.phase = Phase::Shifting {
                            step,
                            reached: None,
                        }
                    }
                    _ => {}
                }
                self.touch(now);
            }
            Command::Pause => {
                if self.rec.hold.is_none() {
                    self.rec.hold = Some(Hold::Paused);
                    self.touch(now);
                }
            }
            Command::Resume => {
                self.rec.hold = None;
                match self.rec.phase {
                    Phase::Shifting { step, .. } => {
                        self.rec.phase = Phase::Shifting {
                            step,
                            reached: None,
                        }
                    }
                    Phase::KeepAlive { .. } => self.rec.phase = Phase::KeepAlive { since: None },
                    _ => {}
                }
                self.touch(now);
            }
            Command::Retire => match self.rec.phase {
                Phase::KeepAlive { since: Some(_) } => {
                    self.rec.hold = None;
                    self.go(Phase::Retiring, now);
                }
                _ => return Err(refuse("green does not hold 100% yet")),
            },
            Command::Promote | Command::PromoteFull => {
                let next = match (&self.rec.phase, cmd) {
                    (Phase::Provisioning { .. }, _) => {
                        return Err(refuse("green is not healthy yet"))
                    }
                    (Phase::KeepAlive { .. }, _) => {
                        return Err(refuse(
                            "green already holds 100%; blue is retired after the keep-alive",
                        ))
                    }
                    (Phase::Shifting { step, .. }, Command::Promote) if *step < last => {
                        Phase::Shifting {
                            step: step + 1,
                            reached: None,
                        }
                    }
                    (Phase::Shifting { .. }, Command::Promote) => Phase::KeepAlive { since: None },
                    _ => Phase::Shifting {
                        step: last,
                        reached: None,
                    },
                };
                self.rec.hold = None;
                self.go(next, now);
            }
        }
        Ok(())
    }

    /// The commands a rolling update treats its own way (`None`: as usual).
    fn rolling_command(&mut self, cmd: Command, now: Millis) -> Option<Result<(), &'static str>> {
        match cmd {
            Command::Shift { .. } | Command::Retire => Some(Err(
                "a rolling update has no traffic split and no second fleet",
            )),
            Command::Promote | Command::PromoteFull => match self.rec.phase {
                Phase::Updating {
                    since,
                    started,
                    seen,
                    completed: Some(_),
                } => {
                    // End the bake now: the next decision succeeds.
                    let bake = self.rec.plan.steps.last().map_or(0, |s| s.bake_ms);
                    self.rec.phase = Phase::Updating {
                        since,
                        started,
                        seen,
                        completed: Some(now.saturating_sub(bake)),
                    };
                    self.rec.hold = None;
                    self.touch(now);
                    Some(Ok(()))
                }
                _ => Some(Err(
                    "the rolling update has not finished; it bakes once it has",
                )),
            },
            _ => None,
        }
    }

    /// Apply the operator requests waiting in the record, oldest first, and
    /// answer each in `replies` (applied, or why not).
    pub fn apply_inbox(&mut self, now: Millis) {
        let inbox = std::mem::take(&mut self.rec.inbox);
        if inbox.is_empty() {
            return;
        }
        for req in inbox {
            let (applied, message) = match self.command(req.command, now) {
                Ok(()) => (true, format!("`teal {}` applied", req.command.name())),
                Err(e) => (false, e.to_string()),
            };
            self.rec.replies.push(Reply {
                id: req.id,
                applied,
                message,
                at: now,
            });
        }
        let excess = self.rec.replies.len().saturating_sub(REPLIES_KEPT);
        self.rec.replies.drain(..excess);
        self.touch(now);
    }

    /// Requests found in the ledger that this engine has not seen: take them
    /// into the record (they are applied by [`Engine::apply_inbox`]). Ones
    /// already answered are dropped. Returns how many were new.
    pub fn adopt_inbox(&mut self, stored: &[Request], version: u64) -> usize {
        self.rec.version = version;
        let mut new = 0;
        for req in stored {
            let seen = self.rec.replies.iter().any(|r| r.id == req.id)
                || self.rec.inbox.iter().any(|r| r.id == req.id);
            if !seen {
                self.rec.inbox.push(req.clone());
                new += 1;
            }
        }
        if new > 0 {
            self.dirty = true;
        }
        new
    }

    /// The router did not take `set` (read back `actual`) after the driver's
    /// retries. Moving forward stops: traffic goes back to blue and a person
    /// is called. When traffic is already going to blue, the driver retries.
    pub fn weights_did_not_take(&mut self, set: Weights, actual: Weights, now: Millis) {
        if matches!(
            self.rec.phase,
            Phase::Provisioning { .. } | Phase::Shifting { .. } | Phase::KeepAlive { .. }
        ) {
            self.go(
                Phase::Halting {
                    reason: Reason::WeightsDidNotTake {
                        set,
                        actual,
                        at: now,
                    },
                },
                now,
            );
        }
    }

    /// Stop moving forward (signal, or a cloud call that keeps failing):
    /// traffic goes back to blue unless blue is being retired, in which case
    /// retirement completes; a rollback in progress completes too.
    pub fn interrupt(&mut self, reason: Reason, now: Millis) {
        if matches!(
            self.rec.phase,
            Phase::Provisioning { .. }
                | Phase::Shifting { .. }
                | Phase::KeepAlive { .. }
                | Phase::Updating { .. }
        ) {
            self.go(Phase::Halting { reason }, now);
        }
    }
}
