//! The rolling job: the live slot's instances replaced a batch at a time,
//! and put back on a revert.

use super::*;

/// A rolling update of the live slot, a batch of instances at a time.
pub(super) struct RollJob {
    pub(super) slot: Slot,
    /// The start of the deployment that asked for it.
    pub(super) since: Option<Millis>,
    /// The strategy's `max_percent` (see [`batch_size`]).
    pub(super) max_percent: u16,
    /// The revision instances are replaced with.
    pub(super) to: String,
    /// The revision they ran.
    pub(super) from: String,
    /// This job puts `to` back after a rollout of `from` (a revert).
    pub(super) reverting: bool,
    pub(super) state: JobState,
    pub(super) task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JobState {
    Running { done: u32, total: u32 },
    Done,
    Failed(String),
}

/// Instances replaced at once in a fleet of `total` under `max_percent`: the
/// surge it allows above the fleet's size, at least one (capacity never
/// drops below the fleet's size, so `min_healthy_percent` holds at 100).
pub fn batch_size(total: u32, max_percent: u16) -> u32 {
    (total * u32::from(max_percent.saturating_sub(100)) / 100).max(1)
}

/// How long a new instance may take to pass its health check in a rolling update.
pub(super) const ROLL_HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an instance taken out of routing keeps running for requests in flight.
pub(super) const ROLL_DRAIN: Duration = Duration::from_millis(500);

impl Daemon {
    /// Replace the live slot's instances with `revision`, a batch at a time.
    /// Idempotent: a job to the same revision is left alone.
    pub(super) fn start_rollout(
        self: &Arc<Self>,
        revision: String,
        since: Option<Millis>,
        max_percent: u16,
    ) -> Result<(), (StatusCode, String)> {
        let mut job = self.rollout.lock().expect("rollout lock");
        if let Some(j) = job.as_ref() {
            if j.to == revision && !j.reverting && j.since == since {
                return Ok(());
            }
            if matches!(j.state, JobState::Running { .. }) {
                return Err((
                    StatusCode::CONFLICT,
                    format!("a rolling update to {} is running", j.to),
                ));
            }
        }
        let w = *self.weights.read().expect("weights lock");
        let slot = w.full_slot().ok_or_else(|| {
            (
                StatusCode::CONFLICT,
                format!("traffic is split ({w}): a rolling update needs one live slot"),
            )
        })?;
        let from = self.fleets.lock().expect("fleets lock")[slot.index()]
            .as_ref()
            .map(|f| f.revision.clone())
            .ok_or_else(|| (StatusCode::CONFLICT, format!("slot {slot} has no fleet")))?;
        // The gates judge the new revision's requests, not the old one's history.
        self.restart_measures(slot);
        *job = Some(self.spawn_roll(slot, since, revision, from, false, max_percent));
        Ok(())
    }

    /// Put the previous revision back: stop the rollout, replace its instances.
    pub(super) fn revert_rollout(self: &Arc<Self>) -> Result<(), (StatusCode, String)> {
        let mut job = self.rollout.lock().expect("rollout lock");
        let Some(j) = job.as_ref() else {
            return Err((StatusCode::CONFLICT, "no rolling update to revert".into()));
        };
        if j.reverting {
            return Ok(());
        }
        j.task.abort();
        let (slot, to, from) = (j.slot, j.from.clone(), j.to.clone());
        *job = Some(self.spawn_roll(slot, j.since, to, from, true, j.max_percent));
        Ok(())
    }

    pub(super) fn spawn_roll(
        self: &Arc<Self>,
        slot: Slot,
        since: Option<Millis>,
        to: String,
        from: String,
        reverting: bool,
        max_percent: u16,
    ) -> RollJob {
        let d = self.clone();
        let target = to.clone();
        RollJob {
            slot,
            since,
            max_percent,
            to,
            from,
            reverting,
            state: JobState::Running { done: 0, total: 0 },
            task: tokio::spawn(async move {
                let result = d.roll(slot, &target, max_percent).await;
                if let Some(j) = d.rollout.lock().expect("rollout lock").as_mut() {
                    if j.to == target {
                        j.state = match result {
                            Ok(()) => JobState::Done,
                            Err(why) => JobState::Failed(why),
                        };
                    }
                }
            }),
        }
    }

    /// A batch at a time: start a batch of `to`, wait until every one is
    /// healthy, then take instances of another revision out of routing until
    /// the fleet is back at its size, let their requests finish, stop them.
    /// Capacity never drops below the fleet's size. Counting toward the size
    /// (not "one old for one new") is what makes a revert that interrupted a
    /// batch end with the fleet's size, not with the interrupted surge too.
    pub(super) async fn roll(&self, slot: Slot, to: &str, max_percent: u16) -> Result<(), String> {
        loop {
            let (others, done, total, size) = {
                let fleets = self.fleets.lock().expect("fleets lock");
                let f = fleets[slot.index()].as_ref().ok_or("the fleet is gone")?;
                // Others not serving (an interrupted batch's) go first.
                let mut others: Vec<(bool, u16)> = f
                    .instances
                    .iter()
                    .filter(|i| i.revision != to)
                    .map(|i| (i.healthy.load(Ordering::Relaxed), i.port))
                    .collect();
                others.sort_by_key(|(healthy, _)| *healthy);
                let others: Vec<u16> = others.into_iter().map(|(_, port)| port).collect();
                let done = f.instances.iter().filter(|i| i.revision == to).count() as u32;
                (others, done, f.instances.len() as u32, f.desired)
            };
            if let Some(j) = self.rollout.lock().expect("rollout lock").as_mut() {
                j.state = JobState::Running {
                    done: done.min(size),
                    total: size,
                };
            }
            let need = size.saturating_sub(done);
            if need == 0 {
                // Every place taken by `to`: what is left of others is surplus.
                self.stop_instances(slot, &others).await;
                if let Some(f) = self.fleets.lock().expect("fleets lock")[slot.index()].as_mut() {
                    f.revision = to.to_string();
                }
                return Ok(());
            }
            let batch = batch_size(size, max_percent).min(need);
            let mut started = Vec::new();
            for port in free_ports(batch as usize).map_err(|e| e.to_string())? {
                let child = spawn(&self.cfg.command, port, to, slot)
                    .map_err(|e| format!("cannot start {:?}: {e}", self.cfg.command.first()))?;
                let healthy = Arc::new(AtomicBool::new(false));
                if let Some(f) = self.fleets.lock().expect("fleets lock")[slot.index()].as_mut() {
                    f.instances.push(Instance {
                        revision: to.to_string(),
                        port,
                        authority: format!("127.0.0.1:{port}")
                            .parse()
                            .expect("a loopback authority"),
                        child,
                        healthy: healthy.clone(),
                    });
                }
                started.push((port, healthy));
            }
            let t0 = Instant::now();
            while !started.iter().all(|(_, h)| h.load(Ordering::Relaxed)) {
                if t0.elapsed() > ROLL_HEALTHY_TIMEOUT {
                    let ports: Vec<u16> = started.iter().map(|(p, _)| *p).collect();
                    self.stop_instances(slot, &ports).await;
                    return Err(format!(
                        "an instance of {to} did not pass its health check in {}s",
                        ROLL_HEALTHY_TIMEOUT.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Back to the fleet's size: as many others out as there are above it.
            let excess = (total + batch).saturating_sub(size) as usize;
            self.stop_instances(slot, &others[..excess.min(others.len())])
                .await;
        }
    }

    /// Where the rolling update to `revision` stands.
    pub(super) fn rollout_state(
        &self,
        revision: &str,
        since: Option<Millis>,
    ) -> crate::model::RolloutState {
        use crate::model::RolloutState as R;
        let job = self.rollout.lock().expect("rollout lock");
        // Another deployment's job (of the same revision, say) is history.
        let Some(j) = job.as_ref().filter(|j| since.is_none() || j.since == since) else {
            return R::NotStarted;
        };
        let percent = |done: u32, total: u32| (total > 0).then(|| (done * 100 / total) as u8);
        match (&j.state, j.reverting) {
            (_, false) if j.to != revision => R::NotStarted,
            (_, true) if j.from != revision => R::NotStarted,
            (JobState::Running { done, total }, false) => R::InProgress {
                percent: percent(*done, *total),
                detail: format!("{done} of {total} instances run {}", j.to),
            },
            (JobState::Done, false) => R::Completed,
            (JobState::Running { done, total }, true) => R::RollingBack {
                detail: format!("{done} of {total} instances run {} again", j.to),
            },
            (JobState::Done, true) => R::RolledBack {
                detail: format!("every instance runs {} again", j.to),
            },
            (JobState::Failed(why), _) => R::Failed {
                detail: why.clone(),
            },
        }
    }
}
