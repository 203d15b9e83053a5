//! The rolling strategy's reaction to what the platform reports: one pure
//! function from the rollout's state (and whether a gate fails, and whether
//! teal is already putting blue back) to the next step. The driver polls the
//! gates throughout a rollout, as for blue/green.
//!
//! A rollback the platform did on its own (ECS's circuit breaker, an instance
//! refresh's auto rollback) ends as rolled back, never as success.

use super::{Action, Engine, Observation, Outcome, Phase, Reason};
use crate::hooks::{HookPoint, HookRun};
use crate::model::{Millis, RolloutState};
use serde::Serialize;

/// What to do next in a rolling update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RollingStep {
    /// Start the rollout.
    Start,
    /// Keep watching (gates every poll).
    Wait,
    /// Put the previous revision back.
    Revert,
    /// The new revision runs everywhere: bake it with gates watched.
    Bake,
    /// Ended rolled back.
    RolledBack {
        /// Why, in the platform's words when it rolled back on its own.
        reason: String,
    },
    /// Ended with a person needed: instances may run either revision.
    Halt {
        /// Why.
        reason: String,
    },
}

/// The next step for a rollout in `state`. `gate_failing`: a gate fails now;
/// `reverting`: teal already decided to put the previous revision back.
pub fn react(state: &RolloutState, gate_failing: bool, reverting: bool) -> RollingStep {
    let back = gate_failing || reverting;
    match state {
        RolloutState::NotStarted if back => RollingStep::RolledBack {
            reason: "nothing was replaced yet".into(),
        },
        RolloutState::NotStarted => RollingStep::Start,
        RolloutState::InProgress { .. } | RolloutState::Completed if back => RollingStep::Revert,
        RolloutState::InProgress { .. } => RollingStep::Wait,
        RolloutState::Completed => RollingStep::Bake,
        RolloutState::RollingBack { .. } => RollingStep::Wait,
        RolloutState::RolledBack { detail } => RollingStep::RolledBack {
            reason: if reverting {
                "the previous revision is back".into()
            } else {
                format!("the platform rolled back on its own: {detail}")
            },
        },
        // Stopped or failed half-way: put the previous revision back (asking
        // again is harmless: every adapter's revert is idempotent).
        RolloutState::Stopped { .. } | RolloutState::Failed { .. } => RollingStep::Revert,
        // The way back failed: only a person can say what the fleet should run.
        RolloutState::RevertFailed { detail } => RollingStep::Halt {
            reason: format!("putting the previous revision back failed: {detail}"),
        },
    }
}

impl Engine {
    /// The rolling strategy: start the update, wait while the platform
    /// replaces instances, bake with gates watched, succeed; on a failed gate
    /// (or a failed update) put the previous revision back.
    pub(super) fn decide_rolling(&mut self, obs: &Observation, now: Millis) -> Option<Action> {
        use crate::model::RolloutState;
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
                        if let Some(super::Hold::Approval { since, until }) = self.rec.hold {
                            return self.awaiting_approval(0, since, until, now, poll_at);
                        }
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
                        if let Err(action) = self.approved(0, now) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_progress() -> RolloutState {
        RolloutState::InProgress {
            percent: Some(40),
            detail: String::new(),
        }
    }

    #[test]
    fn a_healthy_rollout_starts_waits_and_bakes() {
        assert_eq!(
            react(&RolloutState::NotStarted, false, false),
            RollingStep::Start
        );
        assert_eq!(react(&in_progress(), false, false), RollingStep::Wait);
        assert_eq!(
            react(&RolloutState::Completed, false, false),
            RollingStep::Bake
        );
    }

    #[test]
    fn a_failing_gate_reverts_a_rollout_in_progress_or_baking() {
        assert_eq!(react(&in_progress(), true, false), RollingStep::Revert);
        assert_eq!(
            react(&RolloutState::Completed, true, false),
            RollingStep::Revert
        );
        assert!(matches!(
            react(&RolloutState::NotStarted, true, false),
            RollingStep::RolledBack { .. }
        ));
    }

    #[test]
    fn a_rollback_by_the_platform_is_a_rollback_never_a_success() {
        let step = react(
            &RolloutState::RolledBack {
                detail: "circuit breaker: tasks failed to start".into(),
            },
            false,
            false,
        );
        assert_eq!(
            step,
            RollingStep::RolledBack {
                reason:
                    "the platform rolled back on its own: circuit breaker: tasks failed to start"
                        .into()
            }
        );
    }

    #[test]
    fn a_stopped_or_failed_rollout_is_reverted_and_a_failed_revert_halts() {
        // (`Failed` is the update's own failure; `RevertFailed`, the way back's.)
        let failed = RolloutState::Failed {
            detail: "instances failed health checks".into(),
        };
        assert_eq!(react(&failed, false, false), RollingStep::Revert);
        assert_eq!(
            react(&failed, false, true),
            RollingStep::Revert,
            "the revert is asked for (again) until the platform takes it"
        );
        let revert_failed = RolloutState::RevertFailed {
            detail: "rollback failed".into(),
        };
        assert!(matches!(
            react(&revert_failed, false, true),
            RollingStep::Halt { .. }
        ));
        let stopped = RolloutState::Stopped {
            detail: "cancelled".into(),
        };
        assert_eq!(react(&stopped, false, false), RollingStep::Revert);
        assert_eq!(
            react(
                &RolloutState::RollingBack {
                    detail: String::new()
                },
                true,
                true
            ),
            RollingStep::Wait
        );
    }
}
