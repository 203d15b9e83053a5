//! The rolling strategy's reaction to what the platform reports: one pure
//! function from the rollout's state (and whether a gate fails, and whether
//! teal is already putting blue back) to the next step. The driver polls the
//! gates throughout a rollout, as for blue/green.
//!
//! A rollback the platform did on its own (ECS's circuit breaker, an instance
//! refresh's auto rollback) ends as rolled back, never as success.

use crate::model::RolloutState;
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
