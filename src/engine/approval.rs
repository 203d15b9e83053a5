//! Approval steps: a step (or a rolling update's bake) that, once baked,
//! waits for a person's `teal approve` before going on. The wait is a
//! [`Hold::Approval`]: gates (and analysis bounds) are still watched and
//! still roll back, `teal rollback` refuses the step, and the timeout does
//! the step's `on_timeout`. Approvals are kept in the record with who gave
//! them, so a new process (a `resume`, a reconcile pass) neither asks again
//! nor forgets that it is waiting.

use super::*;
use crate::model::Millis;
use crate::strategy::OnTimeout;

impl Engine {
    /// `Ok` when `step` needs no approval or has it; otherwise the wait
    /// begins (`Err(None)`: decide again, in the wait).
    pub(super) fn approved(&mut self, step: usize, now: Millis) -> Result<(), Option<Action>> {
        let Some(approval) = self.rec.plan.steps.get(step).and_then(|s| s.approve) else {
            return Ok(());
        };
        if self.rec.approvals.iter().any(|a| a.step == step) {
            return Ok(());
        }
        self.rec.hold = Some(Hold::Approval {
            since: now,
            until: approval.timeout_ms.map(|t| now + t),
        });
        self.touch(now);
        Err(None)
    }

    /// In the approval wait of `step`: wait, or at the timeout do what the
    /// step's `on_timeout` says. `None`: decide again.
    pub(super) fn awaiting_approval(
        &mut self,
        step: usize,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
        poll_at: Millis,
    ) -> Option<Action> {
        let Some(at) = until.filter(|at| now >= *at) else {
            return Some(Action::Wait {
                until: until.map_or(poll_at, |at| poll_at.min(at)),
            });
        };
        let on_timeout = self.rec.plan.steps[step]
            .approve
            .map_or(OnTimeout::Rollback, |a| a.on_timeout);
        match on_timeout {
            OnTimeout::Rollback => {
                self.rec.hold = None;
                let reason = Reason::ApprovalTimedOut {
                    step,
                    waited_ms: at - since,
                    at: now,
                };
                self.go(Phase::RollingBack { reason }, now);
            }
            OnTimeout::Promote => self.approve(step, "on_timeout = \"promote\"", now),
            OnTimeout::Hold => {
                self.rec.hold = Some(Hold::Approval { since, until: None });
                self.touch(now);
            }
        }
        None
    }

    /// Record `by`'s approval of `step` and end the wait. A blue/green step
    /// goes on to the next at once: what came before the wait (judgment,
    /// hook) is not asked again (a marginal judgment promoted by its timeout
    /// would hold the step again). A rolling update's next decision succeeds.
    pub(super) fn approve(&mut self, step: usize, by: &str, now: Millis) {
        self.rec.hold = None;
        self.rec.approvals.push(Approved {
            step,
            by: by.to_string(),
            at: now,
        });
        self.touch(now);
        if matches!(self.rec.phase, Phase::Shifting { .. }) {
            self.next_step(step, now);
        }
    }

    /// The step whose approval is awaited, if any.
    pub fn awaited_step(&self) -> Option<usize> {
        match (&self.rec.phase, self.rec.hold) {
            (Phase::Shifting { step, .. }, Some(Hold::Approval { .. })) => Some(*step),
            (Phase::Updating { .. }, Some(Hold::Approval { .. })) => Some(0),
            _ => None,
        }
    }
}
