//! Operator commands (`shift`, `promote`, `pause`, `resume`, `rollback`,
//! `retire`, `approve`), checked against the record, and the inbox that carries them
//! from other processes; also the driver's own interruptions.

use super::*;
use crate::model::{Millis, Weights};

impl Engine {
    /// Apply an operator command at `now`.
    pub fn command(&mut self, cmd: Command, now: Millis) -> Result<(), Refused> {
        self.command_because(cmd, None, "an operator", now)
    }

    /// Apply an operator command sent by `by` (kept with an approval).
    pub fn command_by(&mut self, cmd: Command, by: &str, now: Millis) -> Result<(), Refused> {
        self.command_because(cmd, None, by, now)
    }

    /// Roll back because the release this deployment is a member of failed
    /// elsewhere (`cause`: which member, and how); refused as `rollback` is.
    pub fn release_rollback(
        &mut self,
        release: &str,
        cause: &str,
        now: Millis,
    ) -> Result<(), Refused> {
        let reason = Reason::ReleaseFailed {
            release: release.to_string(),
            cause: cause.to_string(),
            at: now,
        };
        self.command_because(Command::Rollback, Some(reason), "the release", now)
    }

    /// `cmd`, with the reason a rollback records when it is not the operator's.
    fn command_because(
        &mut self,
        cmd: Command,
        because: Option<Reason>,
        by: &str,
        now: Millis,
    ) -> Result<(), Refused> {
        if matches!(self.rec.phase, Phase::Updating { .. }) {
            let phase = self.rec.phase.name();
            if let Some(result) = self.rolling_command(cmd, by, now) {
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
                let reason = because.unwrap_or(Reason::Operator {
                    command: "rollback".into(),
                    at: now,
                });
                self.go(Phase::RollingBack { reason }, now);
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
            Command::Approve => match self.awaited_step() {
                Some(step) => self.approve(step, by, now),
                None => return Err(refuse("no step is waiting for approval")),
            },
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
    pub(super) fn rolling_command(
        &mut self,
        cmd: Command,
        by: &str,
        now: Millis,
    ) -> Option<Result<(), &'static str>> {
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
                    // End the bake now: the next decision succeeds (a
                    // promote is the approval, if the bake asks for one).
                    let bake = self.rec.plan.steps.last().map_or(0, |s| s.bake_ms);
                    if self
                        .rec
                        .plan
                        .steps
                        .last()
                        .is_some_and(|s| s.approve.is_some())
                    {
                        self.approve(0, by, now);
                    }
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
            let (applied, message) = match self.command_by(req.command, &req.by, now) {
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
