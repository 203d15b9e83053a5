//! One process runs a release: one driver per member, each on a task of its
//! own, and the [`Schedule`] deciding between their steps.
//!
//! The drivers are the same ones `teal deploy` runs: each keeps its own
//! record in its own ledger (tagged with the release), its own lock and its
//! own gate polls, so every single-service command still works on a member.
//! The runner only starts members and sends them back: a send-back is
//! applied by the member's driver between two of its steps, and wakes it
//! from a wait, so it takes effect at once rather than a poll later.
//!
//! The first member starts alone: its conditional start is the release's
//! lock. A second runner of the same release started at the same instant
//! loses that start and stops having touched nothing; a member whose start
//! is refused later counts as failed, and the release's `on_failure` applies.

use super::schedule::{At, Decision, ReleaseOutcome, Schedule, Standing};
use crate::driver::{Driver, DriverError, EventSink, NewDeployment, Settings};
use crate::ports::Ports;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Notify};

/// One member, ready to start: its ports, its deployment, where its events go.
pub struct MemberRun {
    /// Its ports.
    pub ports: Ports,
    /// Its deployment (tagged with the release).
    pub spec: NewDeployment,
    /// Its events.
    pub sink: EventSink,
    /// Called after each of its driver's steps (the simulator checks the
    /// invariants there); `None` in a real run.
    pub after_step: Option<Box<dyn FnMut() + Send>>,
}

/// A member's handle while its driver runs.
struct Running {
    back: mpsc::UnboundedSender<String>,
    wake: Arc<Notify>,
}

/// Run the release: start members as `schedule` decides, pass its
/// send-backs to their drivers, and report each change of a member's
/// standing to `on_change`. Returns the outcome once every driver has ended.
/// `Err` only when the first start is refused: nothing was started.
pub async fn run(
    release: &str,
    mut schedule: Schedule,
    mut members: BTreeMap<At, MemberRun>,
    settings: Settings,
    signals: Option<watch::Receiver<Option<String>>>,
    mut on_change: impl FnMut(&Schedule, At),
) -> Result<ReleaseOutcome, DriverError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(At, Standing)>();
    let mut running: BTreeMap<At, Running> = BTreeMap::new();
    let mut first = true;
    loop {
        let signalled = signals.as_ref().is_some_and(|s| s.borrow().is_some());
        for decision in schedule.decide() {
            match decision {
                Decision::Start(at) => {
                    let Some(mut member) = members.remove(&at) else {
                        continue;
                    };
                    if signalled {
                        // Stopping: nothing new starts.
                        schedule.update(at, Standing::Waiting);
                        continue;
                    }
                    let (back_tx, back_rx) = mpsc::unbounded_channel();
                    let wake = Arc::new(Notify::new());
                    let after_step = member.after_step.take();
                    let (started, member) = match first {
                        true => {
                            first = false;
                            // The release's lock: refused here, nothing started.
                            (Some(start(member, &settings, &signals, &wake).await?), None)
                        }
                        false => (None, Some(member)),
                    };
                    let task = Member {
                        at,
                        release: release.to_string(),
                        back: back_rx,
                        tx: tx.clone(),
                    };
                    let (settings, signals, wake2) =
                        (settings.clone(), signals.clone(), wake.clone());
                    tokio::spawn(async move {
                        let driver = match (started, member) {
                            (Some(d), _) => d,
                            (None, None) => return,
                            (None, Some(member)) => {
                                match start(member, &settings, &signals, &wake2).await {
                                    Ok(d) => d,
                                    Err(e) => {
                                        let why = format!("not started: {e}");
                                        let _ = task.tx.send((task.at, Standing::failed(why)));
                                        return;
                                    }
                                }
                            }
                        };
                        task.drive(driver, after_step).await;
                    });
                    running.insert(
                        at,
                        Running {
                            back: back_tx,
                            wake,
                        },
                    );
                }
                Decision::SendBack { at, cause } => {
                    if let Some(r) = running.get(&at) {
                        let _ = r.back.send(cause);
                        r.wake.notify_one();
                    }
                }
            }
        }
        if let Some(outcome) = schedule.outcome() {
            return Ok(outcome);
        }
        if !schedule.members().any(|(_, _, s)| s.in_flight()) {
            // Nothing runs and nothing will start (stopped by a signal).
            return Ok(ReleaseOutcome::Incomplete);
        }
        let Some((at, standing)) = rx.recv().await else {
            return Ok(ReleaseOutcome::Incomplete);
        };
        let ended = !standing.in_flight();
        schedule.update(at, standing);
        if ended {
            running.remove(&at);
        }
        on_change(&schedule, at);
    }
}

/// Start one member's deployment.
async fn start(
    member: MemberRun,
    settings: &Settings,
    signals: &Option<watch::Receiver<Option<String>>>,
    wake: &Arc<Notify>,
) -> Result<Driver, DriverError> {
    let d = Driver::start(member.ports, settings.clone(), member.spec, member.sink).await?;
    let d = d.with_wake(wake.clone());
    Ok(match signals {
        Some(rx) => d.with_signals(rx.clone()),
        None => d,
    })
}

/// A member's task: its driver stepped to the end, send-backs applied between steps.
struct Member {
    at: At,
    release: String,
    back: mpsc::UnboundedReceiver<String>,
    tx: mpsc::UnboundedSender<(At, Standing)>,
}

impl Member {
    async fn drive(mut self, mut d: Driver, mut after_step: Option<Box<dyn FnMut() + Send>>) {
        let mut last = Standing::of(d.record());
        let _ = self.tx.send((self.at, last.clone()));
        loop {
            while let Ok(cause) = self.back.try_recv() {
                match d.release_rollback(&self.release, &cause).await {
                    // Refused: it is already going back, or past the way back.
                    Ok(()) | Err(DriverError::Refused(_)) => {}
                    Err(e) => return self.gave_up(e),
                }
            }
            let stepped = d.step().await;
            if let Some(f) = after_step.as_mut() {
                f();
            }
            match stepped {
                Ok(done) => {
                    let now = Standing::of(d.record());
                    // An outcome counts once stored, and the step that stores
                    // it returns it: an ended record whose write is still being
                    // retried is not yet news (a later wave would start on it).
                    if done.is_none() && !now.in_flight() {
                        continue;
                    }
                    if now != last || done.is_some() {
                        let _ = self.tx.send((self.at, now.clone()));
                        last = now;
                    }
                    if done.is_some() {
                        return;
                    }
                }
                Err(e) => return self.gave_up(e),
            }
        }
    }

    /// The driver stopped: its record stays in flight for `teal resume`.
    fn gave_up(self, e: DriverError) {
        let why = format!("{e} (left in flight: `teal resume` continues it)");
        let _ = self.tx.send((self.at, Standing::failed(why)));
    }
}
