//! The driver: the only loop with I/O and time.
//!
//! Each [`Driver::step`] observes (gates first), asks the engine, stores the
//! record, and carries out one action through the ports. Around that it
//! retries transient failures with backoff, reads weights back after every
//! change (set vs actual), polls gates at the strategy's interval, renews the
//! lock, and on a signal brings traffic to a safe state before stopping.
//!
//! Ordering rule for the ledger: the record is written *before* an action
//! (write-ahead), except for a rollback's move of all traffic to blue, which
//! goes first so that a failing gate costs one weight write, not a ledger
//! write and then a weight write. A process killed between that move and the
//! record write leaves a record that expects green traffic where there is
//! none; the engine cannot tell why, and halts (`Reason::TrafficMovedToBlue`):
//! blue keeps all traffic, green is kept for a person. Halts are written
//! ahead like everything else. The point of no return (retiring blue, or a
//! rolling update's success) is passed when the ledger holds it, not when
//! the engine decides it: the gates are watched while that record is
//! stored, and a failing one undoes the decision unless the store is found
//! to have landed.
//!
//! Layout, one concept per file, each an `impl Driver` block of its own:
//! `io` (the ports with retries, counting and the gate watch), `observe`
//! (gates first, then fleets, weights, hooks, the rollout), `act` (one
//! action through the ports, weights read back), `ledger` (the record
//! written ahead, the inbox, operator commands from other processes), and
//! `preflight` (the read-only checks before a start). This file holds the
//! lifecycle: start, take-over, the step and the pass.

/// Call a port through `$io` with retries: `port!(io, "op", io.ports.x.y(args))`.
/// The call expression is evaluated again for each attempt.
///
/// `port!(read: io, "op", call)`: a read, which the gate watch may cut short
/// while it is in flight (a read waiting for its tokens behind a busy rate
/// limit, say) when a gate fails: its answer is not needed on the way back.
/// Writes are never cut short: whether one landed would be unknown.
macro_rules! port {
    (read: $io:expr, $op:expr, $call:expr) => {
        port!(@ $io, $op, $call, true)
    };
    ($io:expr, $op:expr, $call:expr) => {
        port!(@ $io, $op, $call, false)
    };
    (@ $io:expr, $op:expr, $call:expr, $read:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            *$io.calls.entry($op.to_string()).or_default() += 1;
            tracing::debug!(op = $op, attempt, "port call");
            let result = match ($io.urgent, $read.then(|| $io.watcher()).flatten()) {
                (true, _) => $crate::ports::urgent($call).await,
                (false, None) => $call.await,
                (false, Some(watcher)) => {
                    let raced = tokio::select! {
                        biased;
                        r = $call => Raced::Answered(r),
                        readings = watcher.until_failing() => Raced::Failing(readings),
                    };
                    match raced {
                        Raced::Answered(r) => {
                            $io.take_back(watcher);
                            r
                        }
                        Raced::Failing(readings) => break Err($io.cut_short(watcher, $op, readings)),
                    }
                }
            };
            match result {
                Ok(v) => break Ok::<_, PortError>(v),
                Err(e) => {
                    // Put off by the rate limit: not sent, so not an attempt.
                    if matches!(e.kind, ErrorKind::Paced { .. }) {
                        attempt -= 1;
                    }
                    if let Some(e) = $io.after_failure($op, attempt, e).await {
                        break Err(e);
                    }
                }
            }
        }
    }};
}

mod act;
mod io;
mod ledger;
mod observe;
mod preflight;

use io::{GateWatch, Io, Raced};
pub use ledger::submit;
pub use observe::{facts_max_age, FACTS_MAX_AGE_MS};
pub use preflight::Verification;
use preflight::{check_lock, dedup, load_for_preflight, preflight, Preflight};

use crate::engine::{
    Action, Command, Engine, Lock, Observation, Outcome, Phase, Plan, Reason, Record, Request,
    RECORD_SCHEMA,
};
use crate::events::{describe_phase, Event, EventKind};
use crate::hooks::{HookFacts, HookRun, HookState};
use crate::model::InsufficientData;
use crate::model::{fmt_ms, FleetStatus, GateReading, GateState, Millis, Weights};
use crate::ports::{ErrorKind, PortError, Ports};
use std::collections::BTreeMap;
use tokio::sync::watch;

/// Where a driver sends its events.
pub type EventSink = Box<dyn FnMut(&Event) + Send>;

/// Retry policy for transient port failures: exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff.
    pub base_ms: Millis,
    /// Longest backoff.
    pub max_ms: Millis,
}

impl Retry {
    /// The longest backoff after failed attempt `n` (1-based): exponential, capped.
    pub fn backoff(&self, n: u32) -> Millis {
        self.base_ms
            .saturating_mul(1 << (n.max(1) - 1).min(16))
            .min(self.max_ms)
    }

    /// The backoff after failed attempt `n` with "equal jitter": half of
    /// [`Retry::backoff`] plus a uniform share of the other half, so that
    /// processes throttled together do not retry in step, and none retries
    /// sooner than half the exponential backoff.
    pub fn jittered(&self, n: u32, rng: &mut impl rand::Rng) -> Millis {
        let cap = self.backoff(n);
        let half = cap / 2;
        use rand::RngExt as _;
        half + rng.random_range(0..=cap - half)
    }
}

/// How a driver behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who this process is, for the lock (`user@host:pid`, a build id).
    pub owner: String,
    /// How long the lock lasts unless renewed.
    pub lock_ttl_ms: Millis,
    /// Retries of transient failures.
    pub retry: Retry,
    /// Times a weight change is tried before it counts as not taking.
    pub weight_attempts: u32,
    /// Take over a lock held by another owner even before it expires.
    pub force: bool,
    /// Seed of the backoff jitter (the simulator fixes it per run; a real
    /// process draws one).
    pub jitter_seed: u64,
    /// Who sends this process's operator commands and approvals, as the
    /// record keeps it: the caller's AWS identity (STS `GetCallerIdentity`)
    /// when known; `None`: the owner.
    pub identity: Option<String>,
}

impl Settings {
    /// Production settings for `owner`.
    pub fn new(owner: impl Into<String>) -> Settings {
        Settings {
            owner: owner.into(),
            lock_ttl_ms: 5 * 60_000,
            retry: Retry {
                attempts: 6,
                base_ms: 250,
                max_ms: 8_000,
            },
            weight_attempts: 3,
            force: false,
            jitter_seed: rand::random(),
            identity: None,
        }
    }

    /// Who sends this process's commands: its identity, else its owner.
    pub fn by(&self) -> String {
        self.identity.clone().unwrap_or_else(|| self.owner.clone())
    }
}

/// What a new deployment needs.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    /// Deployment id.
    pub id: String,
    /// Service name.
    pub service: String,
    /// Green's revision.
    pub revision: String,
    /// The engine's parameters.
    pub plan: Plan,
    /// Gate names that must exist.
    pub gates: Vec<String>,
    /// Start even when a gate is already failing.
    pub allow_alarm_at_start: bool,
    /// What green runs, recorded for whichever process provisions it.
    pub green: Option<String>,
    /// The CodeBuild run that started it, when one did.
    pub build: Option<crate::pipeline::Build>,
    /// The release it is a member of, when a release starts it.
    pub release: Option<crate::engine::ReleaseTag>,
}

impl NewDeployment {
    /// Its green, for a deployment begun at `since`.
    pub fn green_at(&self, since: Millis) -> crate::model::Green {
        crate::model::Green {
            revision: self.revision.clone(),
            runs: self.green.clone(),
            since,
        }
    }
}

/// Why a driver could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Bad input found before any mutating call.
    #[error("preflight found {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Preflight {
        /// Every problem found.
        problems: Vec<String>,
    },
    /// Another process holds the service.
    #[error("refused: deployment {id} (revision {revision}) holds this service, owned by {owner} for {expires} more; wait, or take it over with `teal resume --force`")]
    LockHeld {
        /// Its id.
        id: String,
        /// Its revision.
        revision: String,
        /// Who holds it.
        owner: String,
        /// How long the lock still lasts (human).
        expires: String,
    },
    /// A deployment of another revision is in flight.
    #[error("refused: deployment {id} of revision {revision} is still in flight ({phase}); `teal resume` or `teal rollback` it first")]
    InFlight {
        /// Its id.
        id: String,
        /// Its revision.
        revision: String,
        /// Its phase.
        phase: String,
    },
    /// Nothing to resume.
    #[error("no deployment is recorded for this service")]
    NoDeployment,
    /// An operator command that makes no sense now.
    #[error("refused: {0}")]
    Refused(#[from] crate::engine::Refused),
    /// Someone else wrote the record: this process must stop touching things.
    #[error("lost the deployment lock: another process wrote the record ({0})")]
    LockLost(String),
    /// A cloud call kept failing; the record stays in flight for `teal resume`.
    #[error("giving up: {0}")]
    Port(#[from] PortError),
}

/// Consecutive unreadable gate polls before the deployment halts.
const MAX_UNREADABLE_GATE_POLLS: u32 = 3;
/// Consecutive steps whose action failed before the driver gives up.
const MAX_FAILING_STEPS: u32 = 4;
/// Ledger writes tried again over our own landed-but-timed-out writes.
const OWN_WRITE_RETRIES: u32 = 8;

/// Drives one deployment through the ports.
pub struct Driver {
    io: Io,
    engine: Engine,
    /// SIGINT / SIGTERM, and whether one was acted on.
    signal: Option<watch::Receiver<Option<String>>>,
    interrupted: bool,
    /// Ends a wait early (a release's runner with a command to apply).
    wake: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// Consecutive steps whose action failed.
    failing_steps: u32,
    /// What observing has seen (its own: `observe.rs`).
    seen: observe::Seen,
    /// What the ledger's writes and reads have met (its own: `ledger.rs`).
    kept: ledger::Kept,
}

/// Where one [`Driver::step`] left the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// An action was carried out; decide again.
    Acted,
    /// Nothing to do before `until` (the driver waited, unless told not to).
    Waiting {
        /// The engine's next deadline, or the next gate poll.
        until: Millis,
    },
    /// The deployment has ended.
    Done(Outcome),
}

/// What became of an operator command sent with [`submit`].
#[derive(Debug)]
pub enum Submitted {
    /// No live process drives the deployment: this one took it over and
    /// applied the command; drive it on (a pass, or to its end).
    TookOver(Box<Driver>),
    /// Another process drives it: the command waits in the record's inbox
    /// for that process, which answers in `replies` under this id.
    Queued {
        /// The request's id.
        id: String,
        /// The process that will apply it.
        owner: String,
    },
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("record", self.engine.record())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Start a new deployment, or continue one of the same revision. Refuses,
    /// before any mutating call, on bad input or when another holds the lock.
    ///
    /// Patient ([`crate::ports::patient`]) until its first record is stored:
    /// nothing is watched before the first change, and the checks are several
    /// calls that would start over each time one of them were put off by the
    /// rate limit (the simulator's invariant Q).
    pub async fn start(
        ports: Ports,
        settings: Settings,
        spec: NewDeployment,
        sink: EventSink,
    ) -> Result<Driver, DriverError> {
        crate::ports::patient(Driver::start_in_turn(ports, settings, spec, sink)).await
    }

    async fn start_in_turn(
        ports: Ports,
        settings: Settings,
        spec: NewDeployment,
        sink: EventSink,
    ) -> Result<Driver, DriverError> {
        let mut io = Io::new(ports, settings, sink, spec.id.clone());
        let (existing, ledger_problem) = load_for_preflight(&mut io).await?;
        if let Some(rec) = existing.as_ref().filter(|r| r.in_flight()) {
            check_lock(&io, rec)?;
            if rec.revision != spec.revision {
                return Err(DriverError::InFlight {
                    id: rec.id.clone(),
                    revision: rec.revision.clone(),
                    phase: rec.phase.name().into(),
                });
            }
            // The same revision again: continue the in-flight deployment.
            return Driver::take_over(io, rec.clone()).await;
        }

        let Preflight {
            mut problems,
            warnings,
            blue_slot,
            blue_revision,
        } = preflight(&mut io, &spec).await?;
        if let Some(p) = ledger_problem {
            problems.insert(0, p);
        }
        dedup(&mut problems);
        if !problems.is_empty() {
            // A deployment that started while these checks ran (its green in
            // the idle slot, say) is why: refuse as taken, naming it.
            if let Ok(Some(now)) = port!(io, "ledger.load", io.ports.ledger.load()) {
                let same = existing.as_ref().map(|r| (&r.id, r.version));
                if now.in_flight() && Some((&now.id, now.version)) != same {
                    check_lock(&io, &now)?;
                    return Err(DriverError::InFlight {
                        id: now.id,
                        revision: now.revision,
                        phase: now.phase.name().into(),
                    });
                }
            }
            return Err(DriverError::Preflight { problems });
        }
        let blue = blue_slot.expect("no problems means a blue slot");
        let now = io.now();
        let rolling = spec.plan.rolling.is_some();
        let rec = Record {
            judgment: None,
            schema: RECORD_SCHEMA,
            id: spec.id,
            service: spec.service,
            revision: spec.revision,
            blue_revision,
            green: spec.green,
            build: spec.build,
            green_slot: blue.other(),
            plan: spec.plan,
            phase: match rolling {
                true => Phase::Updating {
                    since: now,
                    started: false,
                    seen: false,
                    completed: None,
                },
                false => Phase::Provisioning {
                    since: now,
                    green_seen: None,
                },
            },
            hold: None,
            started_at: now,
            updated_at: now,
            lock: None,
            inbox: vec![],
            replies: vec![],
            hooks_passed: vec![],
            approvals: vec![],
            release: spec.release,
            // Overwrite the last finished record: compare against its version.
            version: existing.map_or(0, |r| r.version),
        };
        let mut d = Driver::new(io, Engine::new(rec));
        match d.persist_now(now).await {
            Ok(()) => {}
            Err(DriverError::LockLost(why)) => {
                // Another deployment started between our read and our write.
                let theirs = port!(d.io, "ledger.load", d.io.ports.ledger.load())?;
                return Err(match theirs.filter(|r| r.in_flight()) {
                    Some(r) if r.id == d.engine.record().id => {
                        return Driver::take_over(d.io, r).await
                    }
                    Some(r) => {
                        check_lock(&d.io, &r)?;
                        DriverError::InFlight {
                            id: r.id,
                            revision: r.revision,
                            phase: r.phase.name().into(),
                        }
                    }
                    None => DriverError::LockLost(why),
                });
            }
            Err(e) => return Err(e),
        }
        for message in warnings {
            d.io.emit(EventKind::Warning { message });
        }
        let r = d.engine.record().clone();
        d.io.emit(EventKind::Started {
            service: r.service,
            revision: r.revision,
            blue_revision: r.blue_revision,
            green_slot: r.green_slot,
            rolling: r.plan.rolling.is_some(),
            strategy: r.plan.strategy,
            steps: r.plan.steps.iter().map(|s| s.weight).collect(),
        });
        Ok(d)
    }

    /// Take up the deployment recorded in the ledger (in flight or ended).
    pub async fn resume(
        ports: Ports,
        settings: Settings,
        sink: EventSink,
    ) -> Result<Driver, DriverError> {
        let mut io = Io::new(ports, settings, sink, String::new());
        // Taking up a deployment in flight reads no gate until its first
        // observation: nothing before that waits for the rate limit.
        io.urgent = true;
        let rec =
            port!(io, "ledger.load", io.ports.ledger.load())?.ok_or(DriverError::NoDeployment)?;
        io.deployment = rec.id.clone();
        if !rec.in_flight() {
            return Ok(Driver::new(io, Engine::new(rec)));
        }
        check_lock(&io, &rec)?;
        Driver::take_over(io, rec).await
    }

    async fn take_over(mut io: Io, rec: Record) -> Result<Driver, DriverError> {
        // No gate is watched until the first observation: nothing waits.
        io.urgent = true;
        let previous_owner = rec
            .lock
            .as_ref()
            .map(|l| l.owner.clone())
            .filter(|o| *o != io.settings.owner);
        let phase = rec.phase.name().to_string();
        // A lock still in the record is one whose owner died (or is forced
        // out); a released one was given up in good order.
        let lapsed = rec.lock.is_some();
        io.deployment = rec.id.clone();
        let mut d = Driver::new(io, Engine::new(rec));
        let now = d.io.now();
        d.engine.taken_over(now, lapsed);
        d.persist_now(now).await?;
        let rec = d.engine.record();
        d.io.emit(EventKind::Resumed {
            service: rec.service.clone(),
            revision: rec.revision.clone(),
            blue_revision: rec.blue_revision.clone(),
            steps: rec.plan.steps.iter().map(|s| s.weight).collect(),
            phase,
            previous_owner,
        });
        Ok(d)
    }

    fn new(io: Io, engine: Engine) -> Driver {
        // Approvals given before this process are history, not news.
        let kept = ledger::Kept {
            announced: (None, engine.record().approvals.len()),
            ..ledger::Kept::default()
        };
        Driver {
            io,
            engine,
            signal: None,
            interrupted: false,
            wake: None,
            failing_steps: 0,
            seen: observe::Seen::default(),
            kept,
        }
    }

    /// Cut a wait short when `wake` is notified: whoever holds it (a
    /// release's runner) has something for this driver to apply now.
    pub fn with_wake(mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Driver {
        self.wake = Some(wake);
        self
    }

    /// Deliver signals (their names: `SIGINT`, `SIGTERM`) through this channel.
    pub fn with_signals(mut self, rx: watch::Receiver<Option<String>>) -> Driver {
        self.signal = Some(rx);
        self
    }

    /// The record as this driver last knows it.
    pub fn record(&self) -> &Record {
        self.engine.record()
    }

    /// Port calls made so far by this driver, per operation.
    pub fn calls(&self) -> &BTreeMap<String, u64> {
        &self.io.calls
    }

    /// Apply an operator command and record it before anything else happens.
    pub async fn command(&mut self, cmd: Command) -> Result<(), DriverError> {
        let by = self.io.settings.by();
        let now = self.io.now();
        self.engine.command_by(cmd, &by, now)?;
        // Said before what it changes, as a queued command is.
        self.io.emit(EventKind::Command {
            command: cmd.name().into(),
            by,
        });
        self.emit_transitions();
        self.persist_now(now).await
    }

    /// Roll back because another member of this deployment's release failed
    /// (`cause`); refused as `rollback` is (once blue is being retired).
    pub async fn release_rollback(
        &mut self,
        release: &str,
        cause: &str,
    ) -> Result<(), DriverError> {
        self.apply(|engine, now| engine.release_rollback(release, cause, now))
            .await
    }

    /// Change the engine's record now and store it before anything else happens.
    async fn apply(
        &mut self,
        change: impl FnOnce(&mut Engine, Millis) -> Result<(), crate::engine::Refused>,
    ) -> Result<(), DriverError> {
        let now = self.io.now();
        change(&mut self.engine, now)?;
        self.emit_transitions();
        self.persist_now(now).await
    }

    /// How many times this process observed the deployment (each observation
    /// reads the gates once; the API cost benchmark divides by it).
    pub fn observations(&self) -> u64 {
        self.seen.observations
    }

    /// Run to the end.
    pub async fn run(&mut self) -> Result<Outcome, DriverError> {
        loop {
            if let Some(outcome) = self.step().await? {
                return Ok(outcome);
            }
        }
    }

    /// One observe → decide → record → act pass; `Some(outcome)` at the end.
    pub async fn step(&mut self) -> Result<Option<Outcome>, DriverError> {
        match self.advance(true).await? {
            Progress::Done(outcome) => Ok(Some(outcome)),
            _ => Ok(None),
        }
    }

    /// `teal reconcile --once`: act until the deployment has to wait (a bake,
    /// green's health, the keep-alive) or ends, without waiting, then release
    /// the lock so that the next pass, from any machine, takes it at once.
    /// Between passes no one watches the gates.
    pub async fn pass(&mut self) -> Result<Progress, DriverError> {
        // Actions a pass may take before it must wait: a rollback is three
        // (weights, remove, finish); bounded so a failing action cannot spin.
        for _ in 0..32 {
            match self.advance(false).await? {
                Progress::Acted => continue,
                // A pass that could not read the gates does not end blind:
                // it reads again (after three unreadable polls the driver
                // halts, as a continuous run does), or the next pass would
                // be the first to see an alarm, an interval late.
                Progress::Waiting { .. } if !self.gates_read() => continue,
                done_or_waiting => {
                    if !matches!(done_or_waiting, Progress::Done(_)) {
                        self.release().await?;
                    }
                    return Ok(done_or_waiting);
                }
            }
        }
        self.release().await?;
        Ok(Progress::Acted)
    }

    /// Whether the last observation read the gates (a read that failed
    /// through all its retries leaves the engine deciding without them).
    pub fn gates_read(&self) -> bool {
        self.seen.unreadable_gate_polls == 0
    }

    /// Give the lock up, leaving the deployment for the next pass or `resume`.
    pub async fn release(&mut self) -> Result<(), DriverError> {
        // Not cut short by the gate watch: a pass ends on what its last
        // observation read, and the next pass reads the gates first.
        self.io.watch = None;
        self.write(None).await
    }

    /// Rolling back or halting: nothing on the way waits for a rate limit.
    fn on_the_way_back(&self) -> bool {
        matches!(
            self.engine.record().phase,
            Phase::RollingBack { .. } | Phase::Halting { .. }
        )
    }

    /// One observe → decide → record → act pass. With `wait` off, a `Wait`
    /// action returns at once instead of sleeping. A pass cut short by a
    /// failing gate (read while another call waited out its backoff) goes
    /// straight on to a decision on that reading, within the same call: the
    /// gate read and the reaction to it are one step, so a process that dies
    /// between them has acted on nothing it read.
    pub async fn advance(&mut self, wait: bool) -> Result<Progress, DriverError> {
        // At most twice: once preempted, the gates are known to fail and the
        // watch stays off until the reaction is decided.
        loop {
            let progress = self.advance_once(wait).await?;
            if self.io.preempted.is_none() {
                return Ok(progress);
            }
        }
    }

    async fn advance_once(&mut self, wait: bool) -> Result<Progress, DriverError> {
        self.check_signal();
        self.io.watch = self.gate_watch();
        self.io.urgent = self.on_the_way_back();
        let obs = match self.observe().await {
            Ok(obs) => obs,
            Err(_) if self.io.preempted.is_some() => return Ok(Progress::Acted),
            Err(e) => return self.action_failed(e).map(|_| Progress::Acted),
        };
        // After the gates, and not while one fails: a rollback waits for nothing.
        let overridden = matches!(
            self.engine.record().hold,
            Some(crate::engine::Hold::Manual {
                ignore_gates: true,
                ..
            })
        );
        let gate_failing = !overridden
            && obs
                .gates
                .as_ref()
                .is_some_and(|g| g.iter().any(|r| self.gate_fails(r)));
        if !gate_failing {
            self.read_inbox().await?;
            if self.io.preempted.is_some() {
                // The inbox read was retried into a failing gate: observe again.
                return Ok(Progress::Acted);
            }
        }
        let now = self.io.now();
        // A decision that passes the point of no return (retiring blue,
        // succeeding) commits only once it is stored: until then the gates
        // are still watched, and a failing one, read while the store waits
        // out a backoff or the rate limit, undoes the decision. Otherwise an
        // alarm that began while the store was slow would find blue gone.
        // An operator's `retire` from the inbox is such a decision too: the
        // undo is taken before it is applied (the request stays in the
        // record, and is applied again once no gate fails).
        let undo = self.io.watch.is_some().then(|| self.engine.clone());
        if !gate_failing {
            self.apply_inbox();
        }
        let action = self.engine.decide(&obs, now);
        let committing = undo.is_some() && self.engine.record().phase.past_return();
        if !committing {
            self.emit_transitions();
        }
        self.io.urgent = self.on_the_way_back();
        // Decided: from here the watch guards the action's own retries.
        if !committing {
            self.io.watch = self.gate_watch();
        }
        // Only a rollback moves traffic before recording why: a failing gate
        // must cost one weight write, not a ledger write and then one. A halt
        // (signal, cloud failure) records first, so a process killed after
        // its move is not taken for an interrupted rollback.
        let blue_first = matches!(action, Action::SetWeights { weights } if weights.green == 0)
            && matches!(self.engine.record().phase, Phase::RollingBack { .. });
        // An outcome is only reported once the ledger holds it, and the point
        // of no return is only passed once the ledger holds that.
        let must_store = committing || matches!(action, Action::Finish { .. });
        if !blue_first {
            if let Err(e) = self.persist(now, must_store).await {
                let landed = match committing && self.io.preempted.is_some() {
                    true => self.commit_landed().await,
                    false => Ok(false),
                };
                match (landed, undo.filter(|_| committing)) {
                    // Past the point of no return after all: too late for the gate.
                    (Ok(true), _) => self.io.preempted = None,
                    (landed, before) => {
                        if let Some(before) = before {
                            self.engine = before;
                        }
                        // Preempted by a failing gate: the action is not taken,
                        // and the next decision (a rollback) is made at once.
                        if self.io.preempted.is_some() && landed.is_ok() {
                            return Ok(Progress::Acted);
                        }
                        self.io.preempted = None;
                        let e = landed.err().map(DriverError::Port).unwrap_or(e);
                        return self.persist_failed(e).map(|_| Progress::Acted);
                    }
                }
            }
        }
        if committing {
            self.emit_transitions();
            self.io.watch = self.gate_watch();
        }
        // A pass does not end while a hook runs: the hook lives in this process.
        let hook_running = matches!(obs.hook, Some((_, HookState::Running)));
        let waiting = match action {
            Action::Wait { until } if !wait && !hook_running => Some(until),
            _ => None,
        };
        let result = match waiting {
            Some(_) => Ok(None),
            None => self.act(action, &obs).await,
        };
        if blue_first {
            let now = self.io.now();
            if let Err(e) = self.persist(now, false).await {
                return self.persist_failed(e).map(|_| Progress::Acted);
            }
        }
        match result {
            Ok(outcome) => {
                self.failing_steps = 0;
                Ok(match (outcome, waiting) {
                    (Some(outcome), _) => Progress::Done(outcome),
                    (None, Some(until)) => Progress::Waiting { until },
                    (None, None) => Progress::Acted,
                })
            }
            Err(_) if self.io.preempted.is_some() => Ok(Progress::Acted),
            Err(e) => self.action_failed(e).map(|_| Progress::Acted),
        }
    }
}
