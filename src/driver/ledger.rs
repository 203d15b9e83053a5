//! The record, written ahead of each action; the inbox that carries operator
//! commands from other processes; and [`submit`], which sends one.

use super::*;

/// What the ledger's writes and reads have met.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// The last write failed: the way back to blue does not wait for it.
    pub(super) ledger_failing: bool,
    /// When the record was last read for the inbox.
    pub(super) last_ledger_read: Millis,
    /// The approval wait last announced, and how many approvals were.
    pub(super) announced: (Option<crate::engine::Hold>, usize),
}

impl Driver {
    /// Once per poll, read the record back: operator requests queued by other
    /// processes are taken into the engine's record (and applied by
    /// [`Driver::apply_inbox`] before deciding), and a record taken over by
    /// another process stops this one before it acts.
    pub(super) async fn read_inbox(&mut self) -> Result<(), DriverError> {
        let now = self.io.now();
        // Every poll, steady bake or not: an operator waits for the answer
        // two polls at most before taking the deployment over.
        let due = now >= self.kept.last_ledger_read + self.engine.record().plan.poll_ms;
        if due && !self.kept.ledger_failing && self.engine.record().in_flight() {
            self.kept.last_ledger_read = now;
            // A failed read only delays the requests; the next poll tries again.
            if let Ok(stored) = port!(read: self.io, "ledger.load", self.io.ports.ledger.load()) {
                let ours = self.engine.record();
                let owner = ours.lock.as_ref().map(|l| l.owner.clone());
                match stored {
                    Some(s) if s.version == ours.version => {}
                    Some(s)
                        if s.id == ours.id
                            && s.lock.as_ref().map(|l| &l.owner) == owner.as_ref() =>
                    {
                        self.engine.adopt_inbox(&s.inbox, s.version);
                    }
                    Some(s) => {
                        let who = s.lock.map_or("no one (released)".into(), |l| l.owner);
                        return Err(DriverError::LockLost(format!(
                            "deployment {} is now held by {who}",
                            s.id
                        )));
                    }
                    None => return Err(DriverError::LockLost("the record is gone".into())),
                }
            }
        }
        Ok(())
    }

    /// Apply (and answer) the requests in the record's inbox. A request that
    /// takes the deployment past the point of no return (`retire`) is said
    /// once the decision it leads to is stored, as a decision of the
    /// engine's own would be (`advance_once`).
    pub(super) fn apply_inbox(&mut self) {
        if self.engine.record().inbox.is_empty() {
            return;
        }
        let now = self.io.now();
        for req in &self.engine.record().inbox {
            self.io.emit(EventKind::Command {
                command: req.command.name().into(),
                by: req.by.clone(),
            });
        }
        self.engine.apply_inbox(now);
        if !self.engine.record().phase.past_return() {
            self.emit_transitions();
        }
    }

    /// Store the record if it changed or the lock needs renewing. Once the
    /// ledger has failed, only `must` writes are tried: the way back to blue
    /// does not wait for the ledger, but the final outcome does.
    pub(super) async fn persist(&mut self, now: Millis, must: bool) -> Result<(), DriverError> {
        let half_ttl = self.io.settings.lock_ttl_ms / 2;
        let renew = self
            .engine
            .record()
            .lock
            .as_ref()
            .is_none_or(|l| l.expires_at < now + half_ttl);
        if !self.engine.is_dirty() && !renew {
            return Ok(());
        }
        if self.kept.ledger_failing && !must {
            return Ok(());
        }
        self.persist_now(now).await
    }

    pub(super) async fn persist_now(&mut self, now: Millis) -> Result<(), DriverError> {
        // An ended deployment holds nothing: its record keeps no lock, so
        // `status` shows none and nothing waits for it to lapse.
        if !self.engine.record().in_flight() {
            return self.write(None).await;
        }
        let lock = Lock {
            owner: self.io.settings.owner.clone(),
            expires_at: now + self.io.settings.lock_ttl_ms,
        };
        self.write(Some(lock)).await
    }

    /// Whether a store of the engine's record, cut short by a failing gate,
    /// landed all the same (an attempt that timed out may have): the ledger
    /// holds this deployment in the same phase at a newer version. If so the
    /// engine takes note of that version.
    pub(super) async fn commit_landed(&mut self) -> Result<bool, PortError> {
        self.io.watch = None;
        let stored = port!(self.io, "ledger.load", self.io.ports.ledger.load())?;
        let rec = self.engine.record();
        match stored {
            Some(s) if s.id == rec.id && s.phase == rec.phase && s.version != rec.version => {
                self.engine.stored(s.lock, s.version);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Store the record with `lock` (`None`: released).
    pub(super) async fn write(&mut self, lock: Option<Lock>) -> Result<(), DriverError> {
        let mut rec = self.engine.record().clone();
        rec.lock = lock.clone();
        let owner = self.io.settings.owner.clone();
        // Further tries only after finding our own earlier write (a timed-out
        // attempt that landed), each time at the version it left.
        for _ in 0..OWN_WRITE_RETRIES {
            match port!(self.io, "ledger.store", self.io.ports.ledger.store(&rec)) {
                Ok(version) => {
                    self.engine.stored(lock, version);
                    return Ok(());
                }
                Err(e) if e.kind == ErrorKind::Conflict => {
                    // A timed-out attempt may have landed before its retry. A
                    // record carrying our id and our lock (or none, when this
                    // is a release) was written by us, or had an operator
                    // request queued on it: write again over it. Anything
                    // else is another process.
                    let stored = port!(self.io, "ledger.load", self.io.ports.ledger.load())?;
                    match stored {
                        Some(s)
                            if s.id == rec.id
                                && match &s.lock {
                                    Some(l) => l.owner == owner,
                                    None => lock.is_none(),
                                } =>
                        {
                            // Requests queued meanwhile stay queued: carried
                            // over, and applied on the next step.
                            if self.engine.adopt_inbox(&s.inbox, s.version) > 0 {
                                rec.inbox = self.engine.record().inbox.clone();
                            }
                            rec.version = s.version
                        }
                        _ => return Err(DriverError::LockLost(e.message)),
                    }
                }
                Err(e) => return Err(DriverError::Port(e)),
            }
        }
        Err(DriverError::LockLost(
            "the record kept changing under this process".into(),
        ))
    }

    pub(super) fn emit_transitions(&mut self) {
        let steps: Vec<u8> = self
            .engine
            .record()
            .plan
            .steps
            .iter()
            .map(|s| s.weight)
            .collect();
        // Approvals before the phase they let the deployment into.
        let rec = self.engine.record();
        let approved: Vec<EventKind> = rec.approvals
            [self.kept.announced.1.min(rec.approvals.len())..]
            .iter()
            .map(|a| EventKind::Approved {
                step: a.step + 1,
                by: a.by.clone(),
            })
            .collect();
        self.kept.announced.1 = rec.approvals.len();
        for e in approved {
            self.io.emit(e);
        }
        for t in self.engine.take_transitions() {
            let detail = describe_phase(&t.to, &steps);
            self.io.emit(EventKind::Phase {
                from: t.from.name().into(),
                to: t.to.name().into(),
                detail,
            });
        }
        self.announce_approval_wait();
    }

    /// Announce an approval wait when it begins (or its timeout holds).
    fn announce_approval_wait(&mut self) {
        use crate::engine::Hold;
        let hold = self.engine.record().hold;
        if hold == self.kept.announced.0 {
            return;
        }
        self.kept.announced.0 = hold;
        let Some(Hold::Approval { since, until }) = hold else {
            return;
        };
        let step = self.engine.awaited_step().unwrap_or(0);
        let plan = &self.engine.record().plan;
        let weight = plan.steps.get(step).map_or(100, |s| s.weight);
        let on_timeout = until
            .and(plan.steps.get(step).and_then(|s| s.approve))
            .map(|a| a.on_timeout.name().to_string());
        self.io.emit(EventKind::AwaitingApproval {
            step: step + 1,
            weight,
            since,
            until,
            on_timeout,
        });
    }
}

/// Send an operator command to the recorded deployment. When another
/// process holds a live lock (and `settings.force` is off), the command is
/// checked against the record, then queued for that process; otherwise
/// this process takes the deployment over and applies it.
pub async fn submit(
    ports: Ports,
    settings: Settings,
    cmd: Command,
    sink: EventSink,
) -> Result<Submitted, DriverError> {
    let mut io = Io::new(ports, settings, sink, String::new());
    // An operator's command (a rollback above all) does not queue for the
    // rate limit, nor does the take-over it may lead to.
    io.urgent = true;
    for _ in 0..OWN_WRITE_RETRIES {
        let Some(mut rec) = port!(io, "ledger.load", io.ports.ledger.load())? else {
            return Err(DriverError::NoDeployment);
        };
        io.deployment = rec.id.clone();
        let now = io.now();
        let owner = match &rec.lock {
            Some(l) if rec.in_flight() && l.owner != io.settings.owner && l.expires_at > now => {
                Some(l.owner.clone())
            }
            _ => None,
        };
        let Some(owner) = owner.filter(|_| !io.settings.force) else {
            if !rec.in_flight() {
                // Only a halted deployment takes a command (rollback); the engine says so.
                let mut d = Driver::new(io, Engine::new(rec));
                d.command(cmd).await?;
                return Ok(Submitted::TookOver(Box::new(d)));
            }
            let mut d = Driver::take_over(io, rec).await?;
            d.command(cmd).await?;
            return Ok(Submitted::TookOver(Box::new(d)));
        };
        // Refuse now what the owner would refuse, rather than queue it.
        Engine::new(rec.clone()).command(cmd, now)?;
        let id = format!("r-{now:x}-{:x}", rand::random::<u32>());
        rec.inbox.push(Request {
            id: id.clone(),
            command: cmd,
            by: io.settings.by(),
            at: now,
        });
        match port!(io, "ledger.store", io.ports.ledger.store(&rec)) {
            Ok(_) => return Ok(Submitted::Queued { id, owner }),
            // The owner wrote meanwhile: read again and queue on top.
            Err(e) if e.kind == ErrorKind::Conflict => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DriverError::LockLost(
        "the record kept changing; try again".into(),
    ))
}
