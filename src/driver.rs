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
//! ahead like everything else.

use crate::model::InsufficientData;
use crate::engine::{
    Action, Command, Engine, Lock, Observation, Outcome, Phase, Plan, Reason, Record, Request,
    RECORD_SCHEMA,
};
use crate::events::{describe_phase, Event, EventKind};
use crate::hooks::{HookFacts, HookRun, HookState};
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
        half + rng.gen_range(0..=cap - half)
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
        }
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

/// The ports plus what every call needs: retries, counting, events, and the
/// gates read on their own cadence while another call waits out its backoff.
struct Io {
    ports: Ports,
    settings: Settings,
    sink: EventSink,
    calls: BTreeMap<String, u64>,
    deployment: String,
    jitter: rand_chacha::ChaCha8Rng,
    /// When the last gate read began, by an observation or by the watch:
    /// the next is due one poll later.
    last_gate_read: Millis,
    /// While set, a retry's backoff reads the gates whenever a read is due,
    /// and a failing gate ends the retries (see [`Io::wait_out_backoff`]).
    watch: Option<GateWatch>,
    /// The readings that preempted a call: the next observation's gates.
    preempted: Option<Vec<GateReading>>,
}

/// What the gate watch needs to know: when a read is due and what fails.
#[derive(Debug, Clone, Copy)]
struct GateWatch {
    poll_ms: Millis,
    insufficient_data: InsufficientData,
}

impl GateWatch {
    fn fails(&self, r: &GateReading) -> bool {
        match r.state {
            GateState::Alarm => true,
            GateState::InsufficientData => self.insufficient_data == InsufficientData::Alarm,
            GateState::Ok => false,
        }
    }
}

impl Io {
    fn new(ports: Ports, settings: Settings, sink: EventSink, deployment: String) -> Io {
        use rand::SeedableRng as _;
        Io {
            jitter: rand_chacha::ChaCha8Rng::seed_from_u64(settings.jitter_seed),
            ports,
            settings,
            sink,
            calls: BTreeMap::new(),
            deployment,
            last_gate_read: 0,
            watch: None,
            preempted: None,
        }
    }

    fn now(&self) -> Millis {
        self.ports.clock.now()
    }

    fn emit(&mut self, kind: EventKind) {
        let event = Event {
            at: self.now(),
            deployment: self.deployment.clone(),
            kind,
        };
        (self.sink)(&event);
    }

    /// Count a call, and after a transient failure wait out the backoff.
    /// `Some(e)` means give up with `e`.
    async fn after_failure(&mut self, op: &str, attempt: u32, e: PortError) -> Option<PortError> {
        if !e.is_transient() || attempt >= self.settings.retry.attempts {
            return Some(e);
        }
        let backoff_ms = self.settings.retry.jittered(attempt, &mut self.jitter);
        tracing::warn!(op, attempt, error = %e, backoff_ms, "transient failure; retrying");
        self.emit(EventKind::Retrying {
            op: op.to_string(),
            attempt,
            error: e.message,
            backoff_ms,
        });
        let until = self.now() + backoff_ms;
        self.wait_out_backoff(op, until).await
    }

    /// Sleep until `until`, but read the gates whenever a read falls due
    /// meanwhile: a call retried through throttling must not keep the gates
    /// unread past their poll. A failing gate ends the retries at once
    /// (`Some(error)`), its readings kept for the next observation, so the
    /// driver goes straight to its decision (a rollback). Only between
    /// attempts: a call in flight, a weight write above all, is never cut
    /// short. One attempt per read; a read that fails is left to the
    /// observation, which counts unreadable polls.
    async fn wait_out_backoff(&mut self, op: &str, until: Millis) -> Option<PortError> {
        loop {
            let watch = match self.watch {
                Some(w) if op != "gate.read" => w,
                _ => {
                    self.ports.clock.sleep_until(until).await;
                    return None;
                }
            };
            let due = self.last_gate_read + watch.poll_ms;
            if due >= until {
                self.ports.clock.sleep_until(until).await;
                return None;
            }
            self.ports.clock.sleep_until(due).await;
            *self.calls.entry("gate.read".to_string()).or_default() += 1;
            self.last_gate_read = self.now();
            let read = self.ports.gate.read().await;
            let Ok(readings) = read else { continue };
            let failing: Vec<String> = readings
                .iter()
                .filter(|r| watch.fails(r))
                .map(|r| r.name.clone())
                .collect();
            if !failing.is_empty() {
                self.preempted = Some(readings);
                return Some(PortError::new(
                    op,
                    ErrorKind::Transient,
                    format!("retries stopped: gate {} is failing", failing.join(", ")),
                ));
            }
        }
    }
}

/// Call a port through `$io` with retries: `port!(io, "op", io.ports.x.y(args))`.
/// The call expression is evaluated again for each attempt.
macro_rules! port {
    ($io:expr, $op:expr, $call:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            *$io.calls.entry($op.to_string()).or_default() += 1;
            tracing::debug!(op = $op, attempt, "port call");
            let result = $call.await;
            match result {
                Ok(v) => break Ok::<_, PortError>(v),
                Err(e) => {
                    if let Some(e) = $io.after_failure($op, attempt, e).await {
                        break Err(e);
                    }
                }
            }
        }
    }};
}

/// Drives one deployment through the ports.
pub struct Driver {
    io: Io,
    engine: Engine,
    signal: Option<watch::Receiver<Option<String>>>,
    interrupted: bool,
    last: Option<Observation>,
    gate_states: BTreeMap<String, GateState>,
    green_health: Option<(u32, u32)>,
    unreadable_gate_polls: u32,
    failing_steps: u32,
    ledger_failing: bool,
    last_ledger_read: Millis,
    observations: u64,
    /// The last hook run whose end was reported, so it is reported once.
    hook_reported: Option<crate::hooks::HookRun>,
    /// The last rollout state reported, so that changes are reported once.
    rollout_state: Option<crate::model::RolloutState>,
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
            by: io.settings.owner.clone(),
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

impl Driver {
    /// Start a new deployment, or continue one of the same revision. Refuses,
    /// before any mutating call, on bad input or when another holds the lock.
    pub async fn start(
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
        d.io.emit(EventKind::Resumed {
            phase,
            previous_owner,
        });
        Ok(d)
    }

    fn new(io: Io, engine: Engine) -> Driver {
        Driver {
            io,
            engine,
            signal: None,
            interrupted: false,
            last: None,
            gate_states: BTreeMap::new(),
            green_health: None,
            unreadable_gate_polls: 0,
            failing_steps: 0,
            ledger_failing: false,
            last_ledger_read: 0,
            observations: 0,
            hook_reported: None,
            rollout_state: None,
        }
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
        let now = self.io.now();
        self.engine.command(cmd, now)?;
        self.emit_transitions();
        self.persist_now(now).await
    }

    /// `teal verify`: every check [`Driver::start`] makes before its first
    /// change, read-only: no lock taken, nothing written, no event emitted.
    /// A deployment in flight is a problem too (a new one would be refused,
    /// or would continue it).
    pub async fn verify(
        ports: Ports,
        settings: Settings,
        spec: &NewDeployment,
    ) -> Result<Verification, DriverError> {
        let mut io = Io::new(ports, settings, Box::new(|_| {}), spec.id.clone());
        let (existing, ledger_problem) = load_for_preflight(&mut io).await?;
        let mut problems: Vec<String> = ledger_problem.into_iter().collect();
        if let Some(rec) = existing.filter(|r| r.in_flight()) {
            problems.push(format!(
                "deployment {} (revision {}) is in flight, at {}; `teal status` shows it",
                rec.id,
                rec.revision,
                rec.phase.name()
            ));
        }
        let p = preflight(&mut io, spec).await?;
        problems.extend(p.problems);
        dedup(&mut problems);
        Ok(Verification {
            problems,
            warnings: p.warnings,
            blue: p.blue_slot.map(|s| (s, p.blue_revision)),
        })
    }

    /// How many times this process observed the deployment (each observation
    /// reads the gates once; the API cost benchmark divides by it).
    pub fn observations(&self) -> u64 {
        self.observations
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
        self.unreadable_gate_polls == 0
    }

    /// Give the lock up, leaving the deployment for the next pass or `resume`.
    pub async fn release(&mut self) -> Result<(), DriverError> {
        // Not cut short by the gate watch: a pass ends on what its last
        // observation read, and the next pass reads the gates first.
        self.io.watch = None;
        self.write(None).await
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
        let action = self.engine.decide(&obs, now);
        self.emit_transitions();
        // Decided: from here the watch guards the action's own retries.
        self.io.watch = self.gate_watch();
        // Only a rollback moves traffic before recording why: a failing gate
        // must cost one weight write, not a ledger write and then one. A halt
        // (signal, cloud failure) records first, so a process killed after
        // its move is not taken for an interrupted rollback.
        let blue_first = matches!(action, Action::SetWeights { weights } if weights.green == 0)
            && matches!(self.engine.record().phase, Phase::RollingBack { .. });
        // An outcome is only reported once the ledger holds it.
        let must_store = matches!(action, Action::Finish { .. });
        if !blue_first {
            if let Err(e) = self.persist(now, must_store).await {
                // Preempted by a failing gate: the action is not taken, and
                // the next decision (a rollback) is made at once.
                if self.io.preempted.is_some() {
                    return Ok(Progress::Acted);
                }
                return self.persist_failed(e).map(|_| Progress::Acted);
            }
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

    /// Whether the gates are watched during other calls' backoff: while a
    /// failing gate would change what the engine does (provisioning,
    /// shifting, keep-alive, a rolling update), unless an operator's hold
    /// overrides them. Not on the way back to blue or out: a rollback's own
    /// retries must go on whatever the gates say.
    fn gate_watch(&self) -> Option<GateWatch> {
        let rec = self.engine.record();
        let watched = matches!(
            rec.phase,
            Phase::Provisioning { .. }
                | Phase::Shifting { .. }
                | Phase::KeepAlive { .. }
                | Phase::Updating { .. }
        );
        let overridden = matches!(
            rec.hold,
            Some(crate::engine::Hold::Manual {
                ignore_gates: true,
                ..
            })
        );
        (watched && !overridden).then_some(GateWatch {
            poll_ms: rec.plan.poll_ms,
            insufficient_data: rec.plan.insufficient_data,
        })
    }

    /// Once per poll, read the record back: operator requests queued by other
    /// processes are applied (and answered) before deciding, and a record
    /// taken over by another process stops this one before it acts.
    async fn read_inbox(&mut self) -> Result<(), DriverError> {
        let now = self.io.now();
        let due = now >= self.last_ledger_read + self.engine.record().plan.poll_ms;
        if due && !self.ledger_failing && self.engine.record().in_flight() {
            self.last_ledger_read = now;
            // A failed read only delays the requests; the next poll tries again.
            if let Ok(stored) = port!(self.io, "ledger.load", self.io.ports.ledger.load()) {
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
        if !self.engine.record().inbox.is_empty() {
            let now = self.io.now();
            for req in &self.engine.record().inbox {
                self.io.emit(EventKind::Command {
                    command: req.command.name().into(),
                    by: req.by.clone(),
                });
            }
            self.engine.apply_inbox(now);
            self.emit_transitions();
        }
        Ok(())
    }

    fn check_signal(&mut self) {
        if self.interrupted {
            return;
        }
        let Some(signal) = self.signal.as_ref().and_then(|rx| rx.borrow().clone()) else {
            return;
        };
        self.interrupted = true;
        let now = self.io.now();
        self.io.emit(EventKind::Interrupted {
            signal: signal.clone(),
        });
        self.engine
            .interrupt(Reason::Interrupted { signal, at: now }, now);
        self.emit_transitions();
    }

    /// A port call failed for good: stop moving forward (traffic to blue) and
    /// try again on the next step; after a few such steps, give up and leave
    /// the record in flight for `teal resume`.
    fn action_failed(&mut self, e: PortError) -> Result<Option<Outcome>, DriverError> {
        self.failing_steps += 1;
        if self.failing_steps >= MAX_FAILING_STEPS {
            return Err(DriverError::Port(e));
        }
        let now = self.io.now();
        self.engine.interrupt(
            Reason::ProviderFailed {
                error: e.to_string(),
                at: now,
            },
            now,
        );
        self.emit_transitions();
        Ok(None)
    }

    fn persist_failed(&mut self, e: DriverError) -> Result<Option<Outcome>, DriverError> {
        match e {
            DriverError::Port(pe) => {
                // Without a ledger there is no crash recovery: stop moving forward,
                // and do not let further ledger failures block the way back to blue.
                self.ledger_failing = true;
                self.action_failed(pe)
            }
            other => Err(other),
        }
    }

    /// A rolling update's observation: the gates (read already) and the rollout.
    async fn observe_rollout(
        &mut self,
        gates: Option<Vec<GateReading>>,
    ) -> Result<Observation, PortError> {
        let rollout = self.io.ports.rollout.clone().ok_or_else(|| {
            PortError::new(
                "rollout.state",
                ErrorKind::Invalid,
                "a rolling deployment needs a fleet that can update in place",
            )
        })?;
        let green = self.engine.record().green();
        let state = port!(self.io, "rollout.state", rollout.state(&green))?;
        // Report a change of state, and progress in steps of a tenth.
        let summary = |s: &crate::model::RolloutState| match s {
            crate::model::RolloutState::InProgress { percent, detail } => {
                format!("in_progress {:?} {detail}", percent.map(|p| p / 10))
            }
            other => format!("{other:?}"),
        };
        if self.rollout_state.as_ref().map(summary) != Some(summary(&state)) {
            self.rollout_state = Some(state.clone());
            self.io.emit(EventKind::RolloutState {
                state: state.clone(),
            });
        }
        let hook = self.hook_state();
        let obs = Observation {
            weights: Weights::ALL_BLUE,
            green: FleetStatus::default(),
            blue: FleetStatus::default(),
            gates,
            hook,
            test: None,
            rollout: Some(state),
        };
        self.last = Some(obs.clone());
        Ok(obs)
    }

    /// Gates first; when one fails, skip the other reads and answer from the
    /// last full observation, so the rollback is not delayed by them.
    async fn observe(&mut self) -> Result<Observation, PortError> {
        self.observations += 1;
        let read = match self.io.preempted.take() {
            // Read by the watch, which kept its own start as the anchor.
            Some(readings) => Ok(readings),
            None => {
                // The gates' cadence runs from when a read begins: retries
                // of a failing read do not push the next read back.
                self.io.last_gate_read = self.io.now();
                port!(self.io, "gate.read", self.io.ports.gate.read())
            }
        };
        let gates = match read {
            Ok(g) => {
                self.unreadable_gate_polls = 0;
                self.note_gates(&g);
                Some(g)
            }
            Err(e) => {
                self.unreadable_gate_polls += 1;
                if self.unreadable_gate_polls >= MAX_UNREADABLE_GATE_POLLS {
                    return Err(e);
                }
                // Unread gates are not left a whole poll: the next read is
                // due after the retries' longest backoff, if that is sooner.
                let poll = self.engine.record().plan.poll_ms;
                let gap = poll.min(self.io.settings.retry.max_ms);
                self.io.last_gate_read = (self.io.now() + gap).saturating_sub(poll);
                None
            }
        };
        let failing = gates
            .as_ref()
            .is_some_and(|g| g.iter().any(|r| self.gate_fails(r)));
        if failing {
            // Known already: the reads still to make must not be cut short
            // for it, or a failing read could keep the rollback from its facts.
            self.io.watch = None;
        }
        // A rolling update always reads the rollout: its way back is one
        // call, and while it goes on the gates may fail for as long as they like.
        if self.engine.record().plan.rolling.is_some() {
            return self.observe_rollout(gates).await;
        }
        if let (true, Some(last)) = (failing, &self.last) {
            let mut obs = last.clone();
            obs.gates = gates;
            return Ok(obs);
        }
        let green_slot = self.engine.record().green_slot;
        let weights =
            port!(self.io, "router.weights", self.io.ports.router.weights())?.as_roles(green_slot);
        let mut fleets = port!(self.io, "fleet.statuses", self.io.ports.fleet.statuses())?;
        let green = std::mem::take(&mut fleets[green_slot.index()]);
        let blue = std::mem::take(&mut fleets[green_slot.other().index()]);
        self.note_green(&green);
        let test = match self.engine.watches_test_traffic() {
            true => port!(
                self.io,
                "router.test_weights",
                self.io.ports.router.test_weights()
            )?
            .map(|w| w.as_roles(green_slot)),
            false => None,
        };
        let hook = self.hook_state();
        let obs = Observation {
            weights,
            green,
            blue,
            gates,
            hook,
            test,
            rollout: None,
        };
        self.last = Some(obs.clone());
        Ok(obs)
    }

    /// The state of the hook run the engine waits on; its end is reported once.
    fn hook_state(&mut self) -> Option<(HookRun, HookState)> {
        let run = self.engine.pending_hook()?;
        let state = self.io.ports.hooks.state(&self.engine.record().id, &run);
        let ended = matches!(state, HookState::Passed { .. } | HookState::Failed { .. });
        if ended && self.hook_reported.as_ref() != Some(&run) {
            self.hook_reported = Some(run.clone());
            let (passed, detail, took_ms) = match &state {
                HookState::Passed { took_ms } => (true, String::new(), *took_ms),
                HookState::Failed { detail, took_ms } => (false, detail.clone(), *took_ms),
                _ => unreachable!("ended"),
            };
            self.io.emit(EventKind::HookFinished {
                hook: run.to_string(),
                passed,
                detail,
                took_ms,
            });
        }
        Some((run, state))
    }

    /// The deployment's facts for a hook, as `TEAL_*` variables.
    fn hook_env(&self, run: &HookRun, obs: &Observation) -> Vec<(String, String)> {
        let rec = self.engine.record();
        let step = match rec.phase {
            Phase::Shifting { step, .. } => step + 1,
            Phase::KeepAlive { .. } | Phase::Retiring => rec.plan.steps.len(),
            Phase::Updating {
                completed: Some(_), ..
            } => 1,
            _ => 0,
        };
        // A rolling update has no split: the new revision has all the
        // traffic once the update completed, none before it started.
        let green_weight = match rec.phase {
            Phase::Updating { completed, .. } if rec.plan.rolling.is_some() => {
                if completed.is_some() {
                    100
                } else {
                    0
                }
            }
            _ => obs.weights.green,
        };
        HookFacts {
            deployment: rec.id.clone(),
            service: rec.service.clone(),
            revision: rec.revision.clone(),
            blue_revision: rec.blue_revision.clone(),
            green_slot: rec.green_slot.to_string(),
            strategy: rec.plan.strategy.clone(),
            step,
            steps: rec.plan.steps.len(),
            green_weight,
        }
        .env(run)
    }

    fn gate_fails(&self, r: &GateReading) -> bool {
        match r.state {
            GateState::Alarm => true,
            GateState::InsufficientData => {
                self.engine.record().plan.insufficient_data == InsufficientData::Alarm
            }
            GateState::Ok => false,
        }
    }

    fn note_gates(&mut self, readings: &[GateReading]) {
        for r in readings {
            if self.gate_states.insert(r.name.clone(), r.state) != Some(r.state) {
                self.io.emit(EventKind::Gate {
                    gate: r.name.clone(),
                    state: r.state,
                    reason: r.reason.clone(),
                });
            }
        }
    }

    fn note_green(&mut self, green: &FleetStatus) {
        let h = (green.healthy, green.desired);
        if green.exists && self.green_health != Some(h) {
            self.green_health = Some(h);
            self.io.emit(EventKind::GreenHealth {
                healthy: h.0,
                desired: h.1,
            });
        }
    }

    async fn act(
        &mut self,
        action: Action,
        obs: &Observation,
    ) -> Result<Option<Outcome>, PortError> {
        let green_slot = self.engine.record().green_slot;
        // What the cloud holds is unknown from the moment a change is sent
        // until it is read back: a call that fails (or is cut short by a
        // failing gate) may still have taken effect. The cached observation,
        // which a failing gate's rollback decides on, must not outlive that.
        // A change read back puts what it read into the cache again.
        let cached = match action {
            Action::Wait { .. } | Action::Finish { .. } | Action::StartHook { .. } => None,
            _ => self.last.take(),
        };
        match action {
            Action::ProvisionGreen { desired } => {
                self.io.emit(EventKind::Provisioning { desired });
                let green = self.engine.record().green();
                port!(
                    self.io,
                    "fleet.provision",
                    self.io.ports.fleet.provision(green_slot, &green, desired)
                )?;
                self.last = None;
            }
            Action::SetWeights { weights } => self.set_weights(weights, obs, cached).await?,
            Action::SetTestWeights { weights } => {
                let slots = weights.on_slots(green_slot);
                port!(
                    self.io,
                    "router.set_test_weights",
                    self.io.ports.router.set_test_weights(slots)
                )?;
                let actual = port!(
                    self.io,
                    "router.test_weights",
                    self.io.ports.router.test_weights()
                )?
                .map(|w| w.as_roles(green_slot));
                self.last = cached.map(|mut last| {
                    last.test = actual;
                    last
                });
                if actual != Some(weights) {
                    // Tried again on the next step, like any failed action.
                    return Err(PortError::new(
                        "router.set_test_weights",
                        ErrorKind::Transient,
                        format!(
                            "the test listener did not take {weights} (read back {})",
                            actual.map_or("nothing".into(), |a| a.to_string())
                        ),
                    ));
                }
                self.io.emit(EventKind::TestWeightsSet { weights });
            }
            Action::StartRollout | Action::RevertRollout => {
                let start = matches!(action, Action::StartRollout);
                self.io.emit(EventKind::RolloutAction {
                    action: if start { "start" } else { "revert" }.into(),
                });
                let rollout = self.io.ports.rollout.clone().ok_or_else(|| {
                    PortError::new(
                        "rollout",
                        ErrorKind::Invalid,
                        "a rolling deployment needs a fleet that can update in place",
                    )
                })?;
                if start {
                    let green = self.engine.record().green();
                    port!(self.io, "rollout.start", rollout.start(&green))?;
                } else {
                    port!(self.io, "rollout.revert", rollout.revert())?;
                }
                self.last = None;
            }
            Action::StartHook { run } => {
                self.io.emit(EventKind::HookStarted {
                    hook: run.to_string(),
                });
                let env = self.hook_env(&run, obs);
                let id = self.engine.record().id.clone();
                port!(
                    self.io,
                    "hook.start",
                    self.io.ports.hooks.start(&id, &run, env.clone())
                )?;
            }
            Action::RemoveGreen => {
                self.io.emit(EventKind::Removing {
                    role: "green".into(),
                    slot: green_slot,
                });
                port!(
                    self.io,
                    "fleet.remove",
                    self.io.ports.fleet.remove(green_slot)
                )?;
                self.last = None;
            }
            Action::RetireBlue => {
                self.io.emit(EventKind::Removing {
                    role: "blue".into(),
                    slot: green_slot.other(),
                });
                port!(
                    self.io,
                    "fleet.remove",
                    self.io.ports.fleet.remove(green_slot.other())
                )?;
                self.last = None;
            }
            Action::Wait { until } => self.wait(until).await,
            Action::Finish { outcome } => {
                let calls = self.io.calls.clone();
                self.io.emit(EventKind::Finished {
                    outcome: outcome.clone(),
                    calls,
                });
                return Ok(Some(outcome));
            }
        }
        Ok(None)
    }

    /// Set weights and read them back until they agree. `cached` is the
    /// observation taken out of the cache for the change: it goes back with
    /// each read-back, and stays out if the change ends unread.
    async fn set_weights(
        &mut self,
        target: Weights,
        obs: &Observation,
        mut cached: Option<Observation>,
    ) -> Result<(), PortError> {
        let green_slot = self.engine.record().green_slot;
        let slots = target.on_slots(green_slot);
        let mut actual = obs.weights;
        for attempt in 1..=self.io.settings.weight_attempts {
            // Unknown until read back.
            self.last = None;
            port!(
                self.io,
                "router.set_weights",
                self.io.ports.router.set_weights(slots)
            )?;
            actual = port!(self.io, "router.weights", self.io.ports.router.weights())?
                .as_roles(green_slot);
            if let Some(last) = &mut cached {
                last.weights = actual;
            }
            self.last = cached.clone();
            if actual == target {
                self.io.emit(EventKind::WeightsSet { weights: target });
                return Ok(());
            }
            self.io.emit(EventKind::WeightsMismatch {
                set: target,
                actual,
                attempt,
            });
        }
        let now = self.io.now();
        self.engine.weights_did_not_take(target, actual, now);
        self.emit_transitions();
        if target.green == 0 {
            // All traffic to blue is the move with no alternative: fail the step
            // so it is tried again, and give up (record kept) if it never takes.
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Transient,
                format!("the router did not take {target} (read back {actual})"),
            ));
        }
        Ok(())
    }

    async fn wait(&mut self, until: Millis) {
        // The next gate read is due one poll after the last, whatever the engine's deadline.
        let until = until.min(self.io.last_gate_read + self.engine.record().plan.poll_ms);
        let clock = self.io.ports.clock.clone();
        match &mut self.signal {
            Some(rx) if !self.interrupted => {
                tokio::select! {
                    biased;
                    _ = clock.sleep_until(until) => {}
                    _ = rx.changed() => {}
                }
            }
            _ => clock.sleep_until(until).await,
        }
    }

    /// Store the record if it changed or the lock needs renewing. Once the
    /// ledger has failed, only `must` writes are tried: the way back to blue
    /// does not wait for the ledger, but the final outcome does.
    async fn persist(&mut self, now: Millis, must: bool) -> Result<(), DriverError> {
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
        if self.ledger_failing && !must {
            return Ok(());
        }
        self.persist_now(now).await
    }

    async fn persist_now(&mut self, now: Millis) -> Result<(), DriverError> {
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

    /// Store the record with `lock` (`None`: released).
    async fn write(&mut self, lock: Option<Lock>) -> Result<(), DriverError> {
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

    fn emit_transitions(&mut self) {
        let steps: Vec<u8> = self
            .engine
            .record()
            .plan
            .steps
            .iter()
            .map(|s| s.weight)
            .collect();
        for t in self.engine.take_transitions() {
            let detail = describe_phase(&t.to, &steps);
            self.io.emit(EventKind::Phase {
                from: t.from.name().into(),
                to: t.to.name().into(),
                detail,
            });
        }
    }
}

/// What `teal verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Every problem that would stop a deployment, all at once.
    pub problems: Vec<String>,
    /// What may surprise but would not stop it.
    pub warnings: Vec<String>,
    /// Blue's slot and revision, when the checks found them.
    pub blue: Option<(crate::model::Slot, Option<String>)>,
}

/// What the read-only checks before a deployment found.
struct Preflight {
    problems: Vec<String>,
    warnings: Vec<String>,
    blue_slot: Option<crate::model::Slot>,
    blue_revision: Option<String>,
}

/// Every read-only check a deployment needs before its first change: the
/// router and the fleet adapters' own checks, 100% on one slot, blue there and
/// the other slot empty, every gate present and not already failing. Every
/// problem is collected; only a transient failure stops the checks.
async fn preflight(io: &mut Io, spec: &NewDeployment) -> Result<Preflight, DriverError> {
    if spec.plan.rolling.is_some() {
        return preflight_rolling(io, spec).await;
    }
    let router_checks = io.ports.router.preflight(&spec.plan).await;
    let fleet_checks = io.ports.fleet.preflight(&spec.plan, &spec.green_at(io.now())).await;
    let router_checks_ok = router_checks.problems.is_empty();
    let fleet_checks_ok = fleet_checks.problems.is_empty();
    let mut problems = router_checks.problems;
    problems.extend(fleet_checks.problems);
    let warnings: Vec<String> = router_checks
        .warnings
        .into_iter()
        .chain(fleet_checks.warnings)
        .collect();
    // A read that fails for good (not found, refused) is bad input too;
    // reads of what an adapter's own checks refused are not made at all.
    let weights = match router_checks_ok {
        false => None,
        true => match port!(io, "router.weights", io.ports.router.weights()) {
            Ok(w) => Some(w),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
    };
    let blue_slot = match weights {
        Some(w) if w.is_valid() && w.full_slot().is_some() => w.full_slot(),
        Some(w) => {
            problems.push(format!(
                "the router splits traffic ({w}) but no deployment is in flight; \
                 put 100% on one slot before deploying"
            ));
            None
        }
        None => None,
    };
    let mut blue_revision = None;
    let fleets = match (blue_slot, fleet_checks_ok) {
        (Some(_), true) => match port!(io, "fleet.statuses", io.ports.fleet.statuses()) {
            Ok(f) => Some(f),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        _ => None,
    };
    if let (Some(blue), Some(mut fleets)) = (blue_slot, fleets) {
        let b = std::mem::take(&mut fleets[blue.index()]);
        let g = std::mem::take(&mut fleets[blue.other().index()]);
        if !b.exists {
            problems.push(format!("slot {blue} takes all traffic but has no fleet"));
        }
        if g.exists {
            problems.push(format!(
                "the idle slot {} already holds a fleet (revision {}); remove it or `teal rollback` first",
                blue.other(),
                g.revision.as_deref().unwrap_or("unknown")
            ));
        }
        blue_revision = b.revision;
    }
    check_gates(io, spec, &mut problems).await?;
    Ok(Preflight {
        problems,
        warnings,
        blue_slot,
        blue_revision,
    })
}

/// A rolling update's checks: what the fleet says of itself, and the gates.
/// The record's slots mean nothing here; slot A stands for the fleet.
async fn preflight_rolling(io: &mut Io, spec: &NewDeployment) -> Result<Preflight, DriverError> {
    let Some(rollout) = io.ports.rollout.clone() else {
        return Ok(Preflight {
            problems: vec!["a rolling deployment needs a fleet that can update in place".into()],
            warnings: vec![],
            blue_slot: None,
            blue_revision: None,
        });
    };
    let (checks, blue_revision) = rollout.preflight(&spec.green_at(io.now())).await;
    let mut problems = checks.problems;
    check_gates(io, spec, &mut problems).await?;
    Ok(Preflight {
        problems,
        warnings: checks.warnings,
        blue_slot: Some(crate::model::Slot::B),
        blue_revision,
    })
}

/// Every configured gate exists and, unless allowed, is not in ALARM.
async fn check_gates(
    io: &mut Io,
    spec: &NewDeployment,
    problems: &mut Vec<String>,
) -> Result<(), DriverError> {
    let readings = match port!(io, "gate.read", io.ports.gate.read()) {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            problems.push(format!("gates.alarms: cannot be read ({e})"));
            return Ok(());
        }
    };
    for name in &spec.gates {
        match readings.iter().find(|r| &r.name == name) {
            None => problems.push(format!("gate {name:?} does not exist")),
            Some(r) if r.state == GateState::Alarm && !spec.allow_alarm_at_start => problems.push(format!(
                "gate {name:?} is already in ALARM ({}); fix it first, or set gates.allow_alarm_at_start",
                r.reason
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The recorded deployment before a start or a verify. A ledger that cannot
/// be read for good (missing table or zone, no permission) is bad input: its
/// problem is returned with the rest of the preflight's, not as a failure.
async fn load_for_preflight(io: &mut Io) -> Result<(Option<Record>, Option<String>), DriverError> {
    match port!(io, "ledger.load", io.ports.ledger.load()) {
        Ok(rec) => Ok((rec, None)),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok((None, Some(e.message))),
    }
}

/// Drop repeated problems (the ledger and the router may both find one
/// missing zone), keeping the first of each.
fn dedup(problems: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
}

/// Refuse when another owner holds an unexpired lock (unless forced).
fn check_lock(io: &Io, rec: &Record) -> Result<(), DriverError> {
    let now = io.now();
    match &rec.lock {
        Some(l) if l.owner != io.settings.owner && l.expires_at > now && !io.settings.force => {
            Err(DriverError::LockHeld {
                id: rec.id.clone(),
                revision: rec.revision.clone(),
                owner: l.owner.clone(),
                expires: fmt_ms(l.expires_at - now),
            })
        }
        _ => Ok(()),
    }
}
