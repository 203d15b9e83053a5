//! The blue/green rules: provision green, wait until it is healthy, shift
//! step by step with each bake watched, keep green at 100% for the
//! keep-alive, retire blue; and the way back to blue from any of them.

use super::*;
use crate::analysis::{MarginalAction, StepOutcome};
use crate::model::{Millis, Weights};

impl Engine {
    /// One rule application: an action, or `None` after a transition (decide again).
    pub(super) fn decide_once(&mut self, obs: &Observation, now: Millis) -> Option<Action> {
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

    pub(super) fn provisioning(
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

    pub(super) fn shifting(
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
        if let Some(Hold::Marginal { since }) = self.rec.hold {
            return self.marginal(step, since, now, poll_at);
        }
        if let Some(Hold::Approval { since, until }) = self.rec.hold {
            return self.awaiting_approval(step, since, until, now, poll_at);
        }
        if self.rec.hold.is_some() || obs.gates.is_none() {
            return Some(Action::Wait { until: poll_at });
        }
        let bake_end = reached + self.rec.plan.steps[step].bake_ms;
        if now < bake_end {
            return Some(Action::Wait {
                until: poll_at.min(bake_end),
            });
        }
        if let Err(action) = self.judged(obs, now, poll_at) {
            return action;
        }
        if let Err(action) = self.hook_passed(HookRun::after_step(step), obs, now, poll_at) {
            return action;
        }
        if let Err(action) = self.approved(step, now) {
            return action;
        }
        self.next_step(step, now);
        None
    }

    /// `Ok` when the bake just ended needs no judgment or passed one;
    /// otherwise what to do: wait for late data or for the judgment, or
    /// (`Err(None)`) nothing, the engine having turned to rolling back or
    /// holding a marginal step.
    fn judged(
        &mut self,
        obs: &Observation,
        now: Millis,
        poll_at: Millis,
    ) -> Result<(), Option<Action>> {
        let (Some(judging), Some(window)) = (self.rec.plan.analysis, self.judgment_window()) else {
            return Ok(());
        };
        let passed = |j: &StepJudgment| j.window == window && j.outcome == StepOutcome::Pass;
        if self.rec.judgment.as_ref().is_some_and(passed) {
            return Ok(());
        }
        // Data points arrive late: judge once the bake's last period had time to.
        let ready = window.to + judging.late_ms;
        if now < ready {
            return Err(Some(Action::Wait {
                until: poll_at.min(ready),
            }));
        }
        let Some(judgment) = obs.judgment.as_ref().filter(|j| j.window == window) else {
            // Not read this time (the metrics read failed): never advance unjudged.
            return Err(Some(Action::Wait { until: poll_at }));
        };
        self.rec.judgment = Some(judgment.clone());
        self.touch(now);
        match judgment.outcome {
            StepOutcome::Pass => Ok(()),
            StepOutcome::Fail => {
                let reason = Reason::AnalysisFailed {
                    step: window.step,
                    detail: judgment.summary(),
                    at: now,
                };
                self.go(Phase::RollingBack { reason }, now);
                Err(None)
            }
            StepOutcome::Marginal => {
                self.rec.hold = Some(Hold::Marginal { since: now });
                Err(None)
            }
        }
    }

    /// A step held for a marginal judgment: wait for a person, or at the
    /// timeout do what `on_marginal` says.
    fn marginal(
        &mut self,
        step: usize,
        since: Millis,
        now: Millis,
        poll_at: Millis,
    ) -> Option<Action> {
        let on = self.rec.plan.analysis.map(|a| a.on_marginal);
        let Some(timeout) = on.and_then(|o| o.timeout_ms) else {
            return Some(Action::Wait { until: poll_at });
        };
        let at = since + timeout;
        if now < at {
            return Some(Action::Wait {
                until: poll_at.min(at),
            });
        }
        self.rec.hold = None;
        match on.map(|o| o.action) {
            // Promoted past the judgment, not past a person: an approval
            // step still waits (the simulator's invariant P found it skipped).
            Some(MarginalAction::Promote) => {
                if self.approved(step, now).is_ok() {
                    self.next_step(step, now)
                }
            }
            _ => {
                let detail = self
                    .rec
                    .judgment
                    .as_ref()
                    .map_or(String::new(), |j| j.summary());
                let reason = Reason::MarginalTimedOut {
                    step,
                    detail,
                    held_ms: now - since,
                    at: now,
                };
                self.go(Phase::RollingBack { reason }, now);
            }
        }
        None
    }

    /// Go on from `step`: the next step, or after the last the keep-alive.
    pub(super) fn next_step(&mut self, step: usize, now: Millis) {
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
    }

    pub(super) fn keep_alive(
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
}
