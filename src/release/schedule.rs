//! The wave scheduler, pure: where each member stands in, which members to
//! start and which to send back out, and the release's outcome.
//!
//! Rules, level-triggered (every call of [`Schedule::decide`] looks at the
//! whole release, so a lost update is caught up by the next one):
//!
//! - **Waves in order.** A member of wave k+1 starts only once every member of
//!   wave k *holds*: green has all traffic (keep-alive, blue retiring, or
//!   succeeded). Under `continue`, a failed member counts as settled.
//! - **`max_parallel`** counts the members of a wave that are started and do
//!   not hold yet: a member in its keep-alive no longer moves traffic.
//! - **A failure** is a member that rolls back, halts or cannot start. Under
//!   `rollback-wave` every other member of its wave that can still go back
//!   (not yet retiring blue) is sent back, and so is every member of a later
//!   wave already started (it started only because the failed wave held);
//!   nothing more starts. Under `rollback-release` the earlier waves' members
//!   go back too; under `continue` nothing else changes. Every member's own
//!   failure applies the policy to its wave, not only the first (a wave in
//!   its keep-alive can fail after a later one did). A member is sent back
//!   once.
//! - **The outcome** is known once no member is in flight: succeeded when
//!   every member succeeded, failed otherwise (naming the first failure).

use super::file::OnFailure;
use crate::engine::{Outcome, Phase, Reason, Record};
use serde::Serialize;

/// Where one member of a release stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// Not started.
    Waiting,
    /// Started, green short of all the traffic.
    Shifting,
    /// Green holds all traffic, blue is kept: it can still go back.
    Holding,
    /// Blue is being retired: past the way back.
    Retiring,
    /// Ended with green serving and blue retired.
    Succeeded,
    /// Going back to blue, or halting: a failure in progress.
    Reverting {
        /// Why.
        why: String,
        /// Sent back by the release because another member failed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sent_back: bool,
    },
    /// Ended without green: rolled back, halted, or never started.
    Failed {
        /// Why.
        why: String,
        /// Sent back by the release because another member failed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sent_back: bool,
    },
}

impl Standing {
    /// Where a member stands, from its record.
    pub fn of(rec: &Record) -> Standing {
        let sent_back = |r: &Reason| matches!(r, Reason::ReleaseFailed { .. });
        match &rec.phase {
            Phase::Provisioning { .. } | Phase::Shifting { .. } | Phase::Updating { .. } => {
                Standing::Shifting
            }
            Phase::KeepAlive { .. } => Standing::Holding,
            Phase::Retiring => Standing::Retiring,
            Phase::RollingBack { reason } | Phase::Halting { reason } => Standing::Reverting {
                why: reason.to_string(),
                sent_back: sent_back(reason),
            },
            Phase::Done {
                outcome: Outcome::Succeeded,
                ..
            } => Standing::Succeeded,
            Phase::Done {
                outcome: Outcome::RolledBack { reason } | Outcome::Halted { reason },
                ..
            } => Standing::Failed {
                why: reason.to_string(),
                sent_back: sent_back(reason),
            },
        }
    }

    /// A failure of its own: not a send-back by the release.
    fn own_failure(&self) -> Option<&str> {
        match self {
            Standing::Reverting {
                sent_back: true, ..
            }
            | Standing::Failed {
                sent_back: true, ..
            } => None,
            _ => self.failing(),
        }
    }

    /// A member that failed on its own for `why` (never started, or its driver gave up).
    pub fn failed(why: String) -> Standing {
        Standing::Failed {
            why,
            sent_back: false,
        }
    }

    /// Green holds all traffic (the wave gate).
    pub fn holds(&self) -> bool {
        matches!(
            self,
            Standing::Holding | Standing::Retiring | Standing::Succeeded
        )
    }

    /// Started and not ended.
    pub fn in_flight(&self) -> bool {
        matches!(
            self,
            Standing::Shifting
                | Standing::Holding
                | Standing::Retiring
                | Standing::Reverting { .. }
        )
    }

    /// A failure, in progress or ended.
    pub fn failing(&self) -> Option<&str> {
        match self {
            Standing::Reverting { why, .. } | Standing::Failed { why, .. } => Some(why),
            _ => None,
        }
    }

    /// Whether sending it back to blue can still happen (blue not being retired).
    fn can_go_back(&self) -> bool {
        matches!(self, Standing::Shifting | Standing::Holding)
    }
}

/// A member, by wave and place in its wave.
pub type At = (usize, usize);

/// What the scheduler asks the runner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start this member's deployment.
    Start(At),
    /// Send this member back to blue because of `cause`.
    SendBack {
        /// The member.
        at: At,
        /// Which member failed, and why.
        cause: String,
    },
}

/// The release's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReleaseOutcome {
    /// Every member succeeded.
    Succeeded,
    /// A member failed; what the policy sent back is rolled back, what could
    /// no longer go back was kept.
    Failed {
        /// The first failure: service and why.
        first: String,
    },
    /// Members not started, none in flight, none failed: the runner stopped
    /// between waves (`teal release deploy` again goes on).
    Incomplete,
}

/// The wave scheduler of one release run.
#[derive(Debug, Clone)]
pub struct Schedule {
    on_failure: OnFailure,
    /// `max_parallel` per wave.
    parallel: Vec<usize>,
    /// Service names, per wave.
    names: Vec<Vec<String>>,
    standing: Vec<Vec<Standing>>,
    /// Members already sent back (once each).
    sent_back: Vec<Vec<bool>>,
    /// The first failure seen: where, and the cause passed on.
    failure: Option<(At, String)>,
    /// Every member's own failure, in the order seen: each applies the
    /// policy for its wave (a wave that held can fail after a later one did).
    failures: Vec<(At, String)>,
}

impl Schedule {
    /// A schedule for waves of `names`, each with its `max_parallel`.
    pub fn new(on_failure: OnFailure, waves: Vec<(usize, Vec<String>)>) -> Schedule {
        let parallel = waves.iter().map(|(p, _)| (*p).max(1)).collect();
        let names: Vec<Vec<String>> = waves.into_iter().map(|(_, n)| n).collect();
        Schedule {
            on_failure,
            parallel,
            standing: names
                .iter()
                .map(|w| vec![Standing::Waiting; w.len()])
                .collect(),
            sent_back: names.iter().map(|w| vec![false; w.len()]).collect(),
            names,
            failure: None,
            failures: vec![],
        }
    }

    /// A member now stands `s`.
    pub fn update(&mut self, at: At, s: Standing) {
        // A send-back is the release's own doing, never one of its failures.
        if let Some(why) = s.own_failure() {
            if !self.failures.iter().any(|(a, _)| *a == at) {
                let cause = format!("{} failed: {why}", self.names[at.0][at.1]);
                self.failure.get_or_insert((at, cause.clone()));
                self.failures.push((at, cause));
            }
        }
        self.standing[at.0][at.1] = s;
    }

    /// Where `at` stands.
    pub fn standing(&self, at: At) -> &Standing {
        &self.standing[at.0][at.1]
    }

    /// Every member with where it stands, wave by wave.
    pub fn members(&self) -> impl Iterator<Item = (At, &str, &Standing)> {
        self.standing.iter().enumerate().flat_map(move |(w, wave)| {
            wave.iter()
                .enumerate()
                .map(move |(m, s)| ((w, m), self.names[w][m].as_str(), s))
        })
    }

    /// The wave under way: the first whose members do not all hold (or,
    /// under `continue`, have not all settled). `None` once all have.
    pub fn current_wave(&self) -> Option<usize> {
        let settled = |s: &Standing| match self.on_failure {
            OnFailure::Continue => s.holds() || matches!(s, Standing::Failed { .. }),
            _ => s.holds(),
        };
        self.standing.iter().position(|w| !w.iter().all(settled))
    }

    /// What to do now. Starts only happen while no failure stops the
    /// release; each member is sent back at most once.
    pub fn decide(&mut self) -> Vec<Decision> {
        let mut out = vec![];
        let stops = self.failure.is_some() && self.on_failure != OnFailure::Continue;
        if stops {
            // Later waves started only because the failed one held: they go back too.
            let last = self.standing.len() - 1;
            for ((fw, _), cause) in self.failures.clone() {
                let waves = match self.on_failure {
                    OnFailure::RollbackRelease => 0..=last,
                    _ => fw..=last,
                };
                for w in waves {
                    for m in 0..self.standing[w].len() {
                        if self.standing[w][m].can_go_back() && !self.sent_back[w][m] {
                            self.sent_back[w][m] = true;
                            out.push(Decision::SendBack {
                                at: (w, m),
                                cause: cause.clone(),
                            });
                        }
                    }
                }
            }
            return out;
        }
        let Some(w) = self.current_wave() else {
            return out;
        };
        let moving = self.standing[w]
            .iter()
            .filter(|s| s.in_flight() && !s.holds())
            .count();
        let free = self.parallel[w].saturating_sub(moving);
        for (m, s) in self.standing[w].iter_mut().enumerate() {
            if out.len() == free {
                break;
            }
            if *s == Standing::Waiting {
                // Counted as moving from now on: the runner reports where it
                // stands once its deployment has begun.
                *s = Standing::Shifting;
                out.push(Decision::Start((w, m)));
            }
        }
        out
    }

    /// The outcome, once no member is in flight and nothing more will start.
    pub fn outcome(&self) -> Option<ReleaseOutcome> {
        let all = || self.standing.iter().flatten();
        if all().any(Standing::in_flight) {
            return None;
        }
        if let Some((_, cause)) = &self.failure {
            let stops = self.on_failure != OnFailure::Continue;
            if stops || self.current_wave().is_none() {
                return Some(ReleaseOutcome::Failed {
                    first: cause.clone(),
                });
            }
            return None;
        }
        if all().all(|s| *s == Standing::Succeeded) {
            return Some(ReleaseOutcome::Succeeded);
        }
        None
    }

    /// What the records say of a release from any machine: each member's
    /// standing (`None`: no record of this release run, so not started), and
    /// the outcome when nothing is in flight.
    pub fn from_records(
        on_failure: OnFailure,
        waves: Vec<(usize, Vec<Option<Standing>>, Vec<String>)>,
    ) -> (Schedule, Option<ReleaseOutcome>) {
        let mut s = Schedule::new(
            on_failure,
            waves.iter().map(|(p, _, n)| (*p, n.clone())).collect(),
        );
        for (w, (_, standings, _)) in waves.into_iter().enumerate() {
            for (m, st) in standings.into_iter().enumerate() {
                if let Some(st) = st {
                    s.update((w, m), st);
                }
            }
        }
        if s.failure.is_none() {
            // Only sent-back members failed (the failing one's record is
            // gone, or it was not of this run): the first of them says why.
            let first = s.members().find_map(|(at, name, st)| {
                st.failing()
                    .map(|why| (at, format!("{name} failed: {why}")))
            });
            s.failure = first;
        }
        let outcome = s.outcome().or_else(|| {
            let any_in_flight = s.standing.iter().flatten().any(Standing::in_flight);
            (!any_in_flight).then_some(ReleaseOutcome::Incomplete)
        });
        (s, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize, p: &str) -> Vec<String> {
        (0..n).map(|i| format!("{p}{i}")).collect()
    }

    fn starts(d: &[Decision]) -> Vec<At> {
        d.iter()
            .filter_map(|d| match d {
                Decision::Start(at) => Some(*at),
                _ => None,
            })
            .collect()
    }

    fn sent_back(d: &[Decision]) -> Vec<At> {
        d.iter()
            .filter_map(|d| match d {
                Decision::SendBack { at, .. } => Some(*at),
                _ => None,
            })
            .collect()
    }

    fn failed() -> Standing {
        Standing::failed("alarm x".into())
    }

    #[test]
    fn waves_start_in_order_and_max_parallel_counts_members_still_moving() {
        let mut s = Schedule::new(
            OnFailure::RollbackWave,
            vec![(2, names(3, "a")), (1, names(2, "b"))],
        );
        assert_eq!(starts(&s.decide()), [(0, 0), (0, 1)]);
        assert!(s.decide().is_empty(), "two moving, max_parallel 2");
        s.update((0, 0), Standing::Holding);
        assert_eq!(
            starts(&s.decide()),
            [(0, 2)],
            "a holding member frees its place"
        );
        s.update((0, 1), Standing::Succeeded);
        assert!(s.decide().is_empty(), "wave 1 waits for a2");
        s.update((0, 2), Standing::Retiring);
        assert_eq!(starts(&s.decide()), [(1, 0)]);
        s.update((1, 0), Standing::Succeeded);
        assert_eq!(starts(&s.decide()), [(1, 1)]);
        s.update((1, 1), Standing::Succeeded);
        assert_eq!(s.outcome(), None, "wave 0 still in flight");
        s.update((0, 0), Standing::Succeeded);
        s.update((0, 2), Standing::Succeeded);
        assert_eq!(s.outcome(), Some(ReleaseOutcome::Succeeded));
    }

    #[test]
    fn rollback_wave_sends_back_its_wave_once_and_starts_nothing_more() {
        let mut s = Schedule::new(
            OnFailure::RollbackWave,
            vec![(5, names(1, "a")), (5, names(3, "b")), (5, names(1, "c"))],
        );
        s.decide();
        s.update((0, 0), Standing::Holding);
        assert_eq!(starts(&s.decide()), [(1, 0), (1, 1), (1, 2)]);
        s.update((1, 1), Standing::Holding);
        s.update((1, 2), Standing::Retiring);
        s.update(
            (1, 0),
            Standing::Reverting {
                why: "alarm x".into(),
                sent_back: false,
            },
        );
        let d = s.decide();
        assert_eq!(
            sent_back(&d),
            [(1, 1)],
            "b2 is retiring blue: past the way back"
        );
        match &d[0] {
            Decision::SendBack { cause, .. } => {
                assert!(cause.contains("b0 failed: alarm x"), "{cause}")
            }
            other => panic!("{other:?}"),
        }
        assert!(s.decide().is_empty(), "sent back once");
        s.update((1, 0), failed());
        s.update((1, 1), failed());
        s.update((1, 2), Standing::Succeeded);
        assert_eq!(s.outcome(), None, "a0 in its keep-alive");
        s.update((0, 0), Standing::Succeeded);
        assert!(starts(&s.decide()).is_empty(), "wave c never starts");
        assert!(
            matches!(s.outcome(), Some(ReleaseOutcome::Failed { first }) if first.starts_with("b0 failed"))
        );
    }

    #[test]
    fn a_failure_in_a_held_wave_sends_back_the_later_waves_already_started() {
        let mut s = Schedule::new(
            OnFailure::RollbackWave,
            vec![(5, names(2, "a")), (5, names(1, "b"))],
        );
        s.decide();
        s.update((0, 0), Standing::Holding);
        s.update((0, 1), Standing::Holding);
        assert_eq!(starts(&s.decide()), [(1, 0)]);
        s.update((0, 0), failed());
        assert_eq!(sent_back(&s.decide()), [(0, 1), (1, 0)]);
    }

    #[test]
    fn every_failure_applies_the_policy_to_its_wave_not_only_the_first() {
        let mut s = Schedule::new(
            OnFailure::RollbackWave,
            vec![(5, names(2, "a")), (5, names(1, "b"))],
        );
        s.decide();
        s.update((0, 0), Standing::Holding);
        s.update((0, 1), Standing::Holding);
        s.decide();
        s.update((1, 0), failed());
        assert!(
            sent_back(&s.decide()).is_empty(),
            "wave 0 is not b's to send back"
        );
        s.update((0, 0), failed());
        assert_eq!(
            sent_back(&s.decide()),
            [(0, 1)],
            "a0's own failure sends its wave back"
        );
        assert!(s.outcome().is_none());
        s.update((0, 1), failed());
        assert!(
            matches!(s.outcome(), Some(ReleaseOutcome::Failed { first }) if first.starts_with("b0"))
        );
    }

    #[test]
    fn rollback_release_sends_back_earlier_waves_still_holding() {
        let mut s = Schedule::new(
            OnFailure::RollbackRelease,
            vec![(5, names(2, "a")), (5, names(2, "b"))],
        );
        s.decide();
        s.update((0, 0), Standing::Holding);
        s.update((0, 1), Standing::Succeeded);
        s.decide();
        s.update((1, 1), Standing::Shifting);
        s.update((1, 0), failed());
        assert_eq!(sent_back(&s.decide()), [(0, 0), (1, 1)]);
    }

    #[test]
    fn continue_lets_later_waves_start_and_ends_failed() {
        let mut s = Schedule::new(
            OnFailure::Continue,
            vec![(5, names(2, "a")), (5, names(1, "b"))],
        );
        s.decide();
        s.update((0, 0), failed());
        assert!(s.decide().is_empty(), "a1 still moving");
        s.update((0, 1), Standing::Succeeded);
        assert_eq!(starts(&s.decide()), [(1, 0)]);
        assert_eq!(s.outcome(), None);
        s.update((1, 0), Standing::Succeeded);
        assert!(matches!(s.outcome(), Some(ReleaseOutcome::Failed { .. })));
    }

    #[test]
    fn records_read_from_any_machine_give_the_same_outcome() {
        let waves = |b: Option<Standing>| {
            vec![
                (1, vec![Some(Standing::Succeeded)], names(1, "a")),
                (1, vec![b], names(1, "b")),
            ]
        };
        let (_, o) =
            Schedule::from_records(OnFailure::RollbackWave, waves(Some(Standing::Succeeded)));
        assert_eq!(o, Some(ReleaseOutcome::Succeeded));
        let (_, o) =
            Schedule::from_records(OnFailure::RollbackWave, waves(Some(Standing::Holding)));
        assert_eq!(o, None, "in flight");
        let (_, o) = Schedule::from_records(OnFailure::RollbackWave, waves(None));
        assert_eq!(o, Some(ReleaseOutcome::Incomplete));
        let (_, o) = Schedule::from_records(OnFailure::RollbackWave, waves(Some(failed())));
        assert!(matches!(o, Some(ReleaseOutcome::Failed { .. })));
        // Wave 1 sent back because of b: b's failure is the release's, read in any order.
        let sent = Standing::Failed {
            why: "release \"shop\" failed: b0 failed: alarm x".into(),
            sent_back: true,
        };
        let (_, o) = Schedule::from_records(
            OnFailure::RollbackRelease,
            vec![
                (1, vec![Some(sent.clone())], names(1, "a")),
                (1, vec![Some(failed())], names(1, "b")),
            ],
        );
        assert_eq!(
            o,
            Some(ReleaseOutcome::Failed {
                first: "b0 failed: alarm x".into()
            })
        );
        let (_, o) = Schedule::from_records(
            OnFailure::RollbackRelease,
            vec![(1, vec![Some(sent)], names(1, "a"))],
        );
        assert!(
            matches!(o, Some(ReleaseOutcome::Failed { first }) if first.starts_with("a0 failed: release"))
        );
    }
}
