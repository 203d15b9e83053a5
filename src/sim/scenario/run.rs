//! One seeded run: processes started, killed and restarted over the
//! scenario's faults, operator commands sent, passes made, and the checker
//! consulted after every step; then what the run found, in words.

use super::*;

/// Poll a future once: everything in the simulator completes at once, so
/// `Pending` means the process was killed inside a call.
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// How long a simulated process's lock lasts unless renewed.
pub(super) const LOCK_TTL_MS: Millis = 3 * MIN;

/// A process's settings; its backoff jitter is drawn from the run's seed
/// and its name, so a replayed seed retries at the same instants.
fn settings(seed: u64, owner: String, force: bool) -> Settings {
    let jitter_seed = owner.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    Settings {
        owner,
        lock_ttl_ms: LOCK_TTL_MS,
        retry: Retry {
            attempts: 5,
            base_ms: 200,
            max_ms: crate::sim::check::RETRY_CAP_MS,
        },
        weight_attempts: 3,
        force,
        jitter_seed,
        identity: None,
    }
}

/// Upper bound on driver steps: a run past it is stuck.
const MAX_STEPS: usize = 200_000;
/// Upper bound on processes: every give-up or kill starts one.
const MAX_PROCESSES: usize = 40;

/// Run the scenario of `seed` to its end.
pub fn run_seed(seed: u64) -> RunReport {
    run_scenario(Scenario::generate(seed))
}

/// Run a scenario to its end.
pub fn run_scenario(sc: Scenario) -> RunReport {
    Harness::new(sc).run()
}

/// What the loop does next.
enum Next {
    /// Go on to the driver's step (a process runs).
    Step,
    /// Go round again (start another process, or the next pass).
    Again,
    /// The run is over.
    Stop,
}

/// One run in progress: the simulated cloud, the processes that drive it one
/// after another, the operator, and the checker that judges the cloud's trace.
struct Harness {
    sc: Scenario,
    cloud: SimCloud,
    /// Every event of every process, in order.
    events: Arc<Mutex<Vec<Event>>>,
    /// The deployment the pipeline starts (and starts again).
    spec: NewDeployment,
    checker: Checker,
    report: RunReport,
    signal_tx: tokio::sync::watch::Sender<Option<String>>,
    signal_rx: tokio::sync::watch::Receiver<Option<String>>,
    /// The process driving the deployment, if one runs.
    driver: Option<Driver>,
    /// Since when no process has driven it (excused time for the checker).
    down_since: Option<Millis>,
    /// When each later kill strikes, in calls after the previous process started.
    kills: std::vec::IntoIter<u64>,
    /// Reconcile mode: when the next pass runs.
    next_tick: Millis,
    /// Reconcile mode: operator commands whose process died before they took
    /// effect (or that came before there was a record): the operator runs
    /// them again with the next process. Before, a lost `resume` left a held
    /// deployment held for good (seed 3851198797: no outcome in 5,000 passes).
    carried: Vec<Command>,
    max_processes: usize,
    /// The approval wait (its start) and the process the approver last
    /// sent `teal approve` to: once per wait and process.
    approve_sent: Option<(Millis, usize)>,
}

impl Harness {
    /// The world of `sc`, its bad input applied, and the checker set for it.
    fn new(sc: Scenario) -> Harness {
        let mut world = World::new(
            sc.seed ^ 0x7ea1_5eed,
            T0,
            "v1",
            sc.instances,
            sc.gates.clone(),
        );
        world.faults = sc.faults;
        world.latency = sc.latency;
        world.hooks = sc.hooks.clone();
        world.rollout = sc.rollout.clone();
        world.metrics = sc.analysis.clone();
        world.hand_change = sc.hand_change;
        if sc.plan.test_traffic {
            world.test_router = Some(world.router);
        }
        world.healthy_after = sc.healthy_after;
        let mut gate_names: Vec<String> = sc.gates.iter().map(|g| g.name.clone()).collect();
        match sc.bad_input {
            Some(BadInput::MissingGate) => gate_names.push("no-such-alarm".into()),
            Some(BadInput::GateAlreadyInAlarm) => world.gates.push(SimGate {
                name: "already".into(),
                script: vec![(0, GateState::Alarm)],
            }),
            Some(BadInput::IdleSlotOccupied) => {
                world.fleets[1] = Some(crate::sim::SimFleet {
                    revision: "v0".into(),
                    desired: 1,
                    healthy_at: Some(0),
                })
            }
            Some(BadInput::RouterSplit) => {
                world.router = SlotWeights { a: 60, b: 40 };
                world.fleets[1] = Some(crate::sim::SimFleet {
                    revision: "v1".into(),
                    desired: 1,
                    healthy_at: Some(0),
                });
            }
            Some(BadInput::BlueMissing) => world.fleets[0] = None,
            None => {}
        }
        if sc.bad_input == Some(BadInput::GateAlreadyInAlarm) {
            gate_names.push("already".into());
        }
        let mut kills = sc.kills.clone().into_iter();
        world.kill_at = kills.next();
        let initial = world.router;
        let cloud = SimCloud::new(world);
        let spec = NewDeployment {
            id: format!("d-sim-{}", sc.seed),
            service: "web".into(),
            revision: "v2".into(),
            plan: sc.plan.clone(),
            gates: gate_names,
            allow_alarm_at_start: false,
            green: None,
            build: None,
            release: None,
        };
        let retire = sc.has_command(|c| *c == Command::Retire);
        let checker = Checker::new(Context {
            blue_slot: Slot::A,
            hooks: sc.plan.hooks.clone(),
            test_traffic: sc.plan.test_traffic,
            rolling: sc.rollout.is_some(),
            // Operator commands move weights on their own authority.
            analysis: sc.analysis.clone().filter(|_| sc.commands.is_empty()),
            steps: sc.plan.steps.iter().map(|s| s.weight).collect(),
            approvals: match sc.commands.is_empty() {
                true => (0..sc.plan.steps.len())
                    .filter(|&k| sc.plan.steps[k].approve.is_some())
                    .collect(),
                false => vec![],
            },
            // `teal retire` skips the before-retire hook with the keep-alive.
            retire_command: retire,
            // `teal retire` ends the keep-alive early by design: blue may then go
            // as soon as green holds 100%, and not before.
            keep_alive_ms: if retire { 0 } else { sc.plan.keep_alive_ms },
            // Between reconcile passes no one watches the gates: the documented
            // trade-off. The bound is then one pass interval instead of one poll.
            poll_ms: sc.plan.poll_ms.max(sc.reconcile_every.unwrap_or(0)),
            latency_max: sc.latency.1,
            initial,
        });
        let report = RunReport {
            scenario: sc.clone(),
            outcome: None,
            refused: None,
            violations: vec![],
            events: vec![],
            steps: 0,
            processes: 0,
            calls: 0,
        };
        let (signal_tx, signal_rx) = tokio::sync::watch::channel(None::<String>);
        // Every reconcile pass is a process of its own.
        let max_processes = if sc.reconcile_every.is_some() {
            MAX_PASSES
        } else {
            MAX_PROCESSES
        };
        Harness {
            sc,
            cloud,
            events: Arc::default(),
            spec,
            checker,
            report,
            signal_tx,
            signal_rx,
            driver: None,
            down_since: None,
            kills,
            next_tick: T0,
            carried: Vec::new(),
            max_processes,
            approve_sent: None,
        }
    }

    /// Processes and steps until an outcome, a refusal or a violation that
    /// stops the run; then the outcome judged against the scenario.
    fn run(mut self) -> RunReport {
        loop {
            if self.driver.is_none() {
                match self.start_process() {
                    Next::Step => {}
                    Next::Again => continue,
                    Next::Stop => break,
                }
            }
            if let Next::Stop = self.step() {
                break;
            }
        }
        let mut report = self.report;
        if let Some(outcome) = &report.outcome {
            check_fate(
                &self.sc,
                outcome,
                report.processes > 1,
                &mut report.violations,
            );
        }
        report.violations.extend(self.checker.violations);
        report.calls = self.cloud.world().calls;
        report.events = std::mem::take(&mut self.events.lock().expect("events"));
        report
    }

    /// An event sink into the run's events.
    fn sink(&self) -> EventSink {
        let events = self.events.clone();
        Box::new(move |e: &Event| events.lock().expect("events").push(e.clone()))
    }

    /// Start a process: the first one deploys; later ones resume (or deploy
    /// again if the first died before recording anything). In reconcile
    /// mode, an operator's command is a process of its own: it takes the
    /// released deployment over, applies, and makes a pass.
    fn start_process(&mut self) -> Next {
        let reconcile = self.sc.reconcile_every;
        self.report.processes += 1;
        if self.report.processes > self.max_processes {
            let max = self.max_processes;
            self.report
                .violations
                .push(format!("no outcome after {max} processes"));
            return Next::Stop;
        }
        let owner = format!("sim-process-{}", self.report.processes);
        let has_record = self.cloud.world().ledger.is_some();
        let first = self.report.processes == 1;
        let mutating_before = self.cloud.world().mutating_calls;
        if !first && has_record && self.sc.wait_out_lock {
            // No --force: wait for the dead owner's lock to lapse.
            let mut w = self.cloud.world();
            if let Some(lock) = w.record().and_then(|r| r.lock) {
                if lock.expires_at > w.now {
                    w.now = lock.expires_at + 1;
                }
            }
        }
        // Nothing recorded yet (the first process died early): the pipeline runs `teal deploy` again.
        let due: Vec<Command> = match reconcile {
            Some(_) if has_record => {
                let mut due: Vec<Command> = self.carried.drain(..).collect();
                due.extend(commands_due(&self.sc, self.report.processes));
                if self.approval_due() {
                    due.push(Command::Approve);
                }
                due
            }
            Some(_) => {
                let now_due = commands_due(&self.sc, self.report.processes);
                self.carried.extend(now_due);
                vec![]
            }
            None => vec![],
        };
        let seed = self.sc.seed;
        let force = !self.sc.wait_out_lock;
        let began_at = self.cloud.world().now;
        let started = if let Some(cmd) = due.first() {
            match poll_once(submit(
                self.cloud.ports(),
                settings(seed, owner.clone(), false),
                *cmd,
                self.sink(),
            )) {
                None => {
                    self.carried.extend(due.iter().copied());
                    None
                }
                Some(Ok(Submitted::TookOver(d))) => Some(Ok(*d)),
                // A killed pass's lock is still live: the command waits in
                // the inbox for the next pass.
                Some(Ok(Submitted::Queued { .. })) => {
                    self.tick();
                    return Next::Again;
                }
                Some(Err(DriverError::Refused(_))) => poll_once(Driver::resume(
                    self.cloud.ports(),
                    settings(seed, owner, force),
                    self.sink(),
                )),
                Some(Err(e)) => Some(Err(e)),
            }
        } else if has_record {
            poll_once(Driver::resume(
                self.cloud.ports(),
                settings(seed, owner, force),
                self.sink(),
            ))
        } else {
            poll_once(Driver::start(
                self.cloud.ports(),
                settings(seed, owner, false),
                self.spec.clone(),
                self.sink(),
            ))
        };
        // When this start began: a gate that was in ALARM at any moment of
        // its preflight (which may wait for the rate limit) is a fair refusal.
        let began = began_at;
        match started {
            None => {
                self.on_kill();
                Next::Again
            }
            Some(Ok(mut d)) => {
                for (i, cmd) in due.iter().enumerate().skip(1) {
                    // Refusals are the engine's business; the pass goes on.
                    if poll_once(d.command(*cmd)).is_none() {
                        self.carried.extend(due[i..].iter().copied());
                        self.on_kill();
                        return Next::Again;
                    }
                }
                if let Some(t) = self.down_since.take() {
                    let mut w = self.cloud.world();
                    w.excused += w.now.saturating_sub(t);
                }
                self.driver = Some(d.with_signals(self.signal_rx.clone()));
                Next::Step
            }
            Some(Err(DriverError::Preflight { problems })) => {
                // A deploy re-run after a gate began failing is rightly refused.
                let alarm_now = {
                    let w = self.cloud.world();
                    w.gates.iter().any(|g| {
                        g.state_at(w.now).0 == GateState::Alarm
                            || super::super::check::alarm_episodes(&g.script)
                                .iter()
                                .any(|(on, off)| *on <= w.now && *off > began)
                    })
                };
                let legit = alarm_now && problems.iter().all(|p| p.contains("already in ALARM"));
                if self.sc.bad_input.is_none() && !legit {
                    self.report
                        .violations
                        .push(format!("preflight refused a good scenario: {problems:?}"));
                }
                if self.cloud.world().mutating_calls != mutating_before {
                    self.report
                        .violations
                        .push("invariant 8: a refused start made a mutating call".into());
                }
                self.report.refused = Some(problems.join("; "));
                Next::Stop
            }
            Some(Err(DriverError::Port(_))) => {
                // Faults exhausted the retries: the job failed; it is run again.
                let now = self.cloud.world().now;
                self.down_since.get_or_insert(now);
                if self.sc.bad_input.is_some()
                    && self.cloud.world().mutating_calls != mutating_before
                {
                    self.report
                        .violations
                        .push("invariant 8: bad input led to a mutating call".into());
                }
                Next::Again
            }
            // A killed pass's lock has not lapsed: the next pass tries again.
            Some(Err(DriverError::LockHeld { .. })) if reconcile.is_some() => {
                self.tick();
                Next::Again
            }
            Some(Err(e)) => {
                self.report
                    .violations
                    .push(format!("unexpected error starting a process: {e}"));
                Next::Stop
            }
        }
    }

    /// One step of the running process, with the operator's commands and the
    /// scenario's interventions due at it, and the checker after it.
    fn step(&mut self) -> Next {
        let reconcile = self.sc.reconcile_every;
        if self.sc.bad_input.is_some() {
            self.report.violations.push(format!(
                "invariant 8: bad input {:?} was not refused",
                self.sc.bad_input
            ));
            return Next::Stop;
        }
        self.report.steps += 1;
        if self.report.steps > MAX_STEPS {
            self.report
                .violations
                .push(format!("no outcome after {MAX_STEPS} steps"));
            return Next::Stop;
        }
        if self.sc.interrupt_at_step == Some(self.report.steps) {
            let _ = self.signal_tx.send(Some("SIGTERM".into()));
        }
        let record = self.driver.as_ref().expect("a driver runs").record();
        if self.sc.second_driver_at_step == Some(self.report.steps) && record.in_flight() {
            let holder = record.id.clone();
            self.second_driver(holder);
        }
        if reconcile.is_none() {
            for cmd in commands_due(&self.sc, self.report.steps) {
                self.operator(cmd);
            }
            if self.approval_due() {
                self.operator(Command::Approve);
            }
        }
        let d = self.driver.as_mut().expect("a driver runs");
        let Some(result) = poll_once(d.advance(reconcile.is_none())) else {
            self.cloud.world().trace.alarms_pending.clear();
            self.driver = None;
            self.on_kill();
            return Next::Again;
        };
        {
            let mut w = self.cloud.world();
            let pending = std::mem::take(&mut w.trace.alarms_pending);
            w.trace.alarms_seen.extend(pending);
            self.checker.after_step(&w);
        }
        match result {
            Ok(Progress::Acted) => Next::Again,
            // As `Driver::pass` does: a pass that could not read the
            // gates reads again before it ends.
            Ok(Progress::Waiting { .. }) if reconcile.is_some() && !d.gates_read() => Next::Again,
            Ok(Progress::Waiting { .. }) if reconcile.is_some() => {
                // The pass ends: release the lock, exit, wait for the next tick.
                let released = poll_once(d.release());
                self.driver = None;
                match released {
                    None => self.on_kill(),
                    // Faults kept the release from landing: the lock
                    // stays until it lapses, and the passes until then
                    // are refused. That stretch is lost to the faults,
                    // like a process that gave up (it was not excused
                    // before: seed 1077977 was judged against a bound
                    // that ignored three minutes of a lapsing lock).
                    Some(Err(DriverError::Port(_))) => {
                        let now = self.cloud.world().now;
                        self.down_since.get_or_insert(now);
                    }
                    Some(Err(e)) => {
                        self.report
                            .violations
                            .push(format!("releasing the lock: {e}"));
                        return Next::Stop;
                    }
                    Some(Ok(())) => {}
                }
                self.tick();
                Next::Again
            }
            Ok(Progress::Waiting { .. }) => Next::Again,
            Ok(Progress::Done(outcome)) => {
                self.checker.at_end(&self.cloud.world(), &outcome);
                self.report.outcome = Some(outcome);
                Next::Stop
            }
            Err(DriverError::Port(_)) => {
                // The process gave up (exit 1) with the record in flight.
                self.driver = None;
                let now = self.cloud.world().now;
                self.down_since.get_or_insert(now);
                Next::Again
            }
            Err(e) => {
                self.report.violations.push(format!("driver error: {e}"));
                Next::Stop
            }
        }
    }

    /// Whether the scenario's approver sends `teal approve` now: a step has
    /// waited for approval its delay, and this process was not sent one
    /// for this wait yet.
    fn approval_due(&mut self) -> bool {
        let Some(delay) = self.sc.approver else {
            return false;
        };
        let w = self.cloud.world();
        let Some(crate::engine::Hold::Approval { since, .. }) = w.record().and_then(|r| r.hold)
        else {
            return false;
        };
        let now = w.now;
        drop(w);
        let sent = (since, self.report.processes);
        if now < since + delay || self.approve_sent == Some(sent) {
            return false;
        }
        self.approve_sent = Some(sent);
        true
    }

    /// Move the clock to the next reconcile pass.
    fn tick(&mut self) {
        let Some(every) = self.sc.reconcile_every else {
            return;
        };
        let mut w = self.cloud.world();
        while self.next_tick <= w.now {
            self.next_tick += every;
        }
        w.now = self.next_tick;
    }

    /// The running process was killed: the next kill is armed, and the
    /// time until another process drives the deployment is excused.
    fn on_kill(&mut self) {
        let mut w = self.cloud.world();
        w.killed = false;
        let calls = w.calls;
        w.kill_at = self.kills.next().map(|offset| calls + offset);
        self.down_since.get_or_insert(w.now);
    }

    /// `teal <cmd>` from an operator's machine while a driver holds the lock: the
    /// command is queued for that driver. Its calls are another process's, so
    /// they are neither faulted, nor killed, nor counted against the driver's
    /// reaction time.
    fn operator(&mut self, cmd: Command) {
        let cloud = &self.cloud;
        let report = &mut self.report;
        let events = &self.events;
        let (mutating_before, before) = {
            let mut w = cloud.world();
            w.quiet = true;
            (w.mutating_calls, w.now)
        };
        let live = cloud
            .world()
            .record()
            .filter(|r| r.in_flight())
            .and_then(|r| r.lock)
            .is_some_and(|l| l.expires_at > before);
        let result = live.then(|| {
            let events2 = events.clone();
            poll_once(submit(
                cloud.ports(),
                settings(report.scenario.seed, "operator".into(), false),
                cmd,
                Box::new(move |e: &Event| events2.lock().expect("events").push(e.clone())),
            ))
        });
        let mut w = cloud.world();
        w.quiet = false;
        w.excused += w.now - before;
        match result {
            None
            | Some(Some(Ok(Submitted::Queued { .. })))
            | Some(Some(Err(DriverError::Refused(_)))) => {}
            Some(other) => report.violations.push(format!(
                "operator `teal {}` while the driver holds the lock got {:?}",
                cmd.name(),
                other.map(|r| r.map(|_| "a take-over"))
            )),
        }
        // Queuing writes the record only: no weight, fleet or gate change.
        if w.mutating_calls > mutating_before + 1 {
            report.violations.push(format!(
                "operator `teal {}` made a mutating call beyond the ledger",
                cmd.name()
            ));
        }
    }

    /// A second `teal deploy` while the first holds the lock must refuse, name
    /// the first deployment, and change nothing (invariant 7).
    fn second_driver(&mut self, holder: String) {
        let cloud = &self.cloud;
        let spec = &self.spec;
        let report = &mut self.report;
        let events = &self.events;
        let (mutating_before, now) = {
            let mut w = cloud.world();
            w.quiet = true;
            (w.mutating_calls, w.now)
        };
        let lock_live = cloud
            .world()
            .record()
            .and_then(|r| r.lock)
            .is_some_and(|l| l.expires_at > now);
        let mut other = spec.clone();
        other.id = "d-intruder".into();
        other.revision = "v3".into();
        let events2 = events.clone();
        let result = poll_once(Driver::start(
            cloud.ports(),
            settings(report.scenario.seed, "intruder".into(), false),
            other,
            Box::new(move |e: &Event| events2.lock().expect("events").push(e.clone())),
        ));
        {
            let mut w = cloud.world();
            w.quiet = false;
            if w.mutating_calls != mutating_before {
                report
                    .violations
                    .push("invariant 7: a refused second deployment made a mutating call".into());
            }
        }
        match result {
            Some(Err(DriverError::LockHeld { id, .. })) if lock_live && id == holder => {}
            Some(Err(DriverError::InFlight { id, .. })) if !lock_live && id == holder => {}
            other => report.violations.push(format!(
                "invariant 7: a second deployment while {holder} is in flight (lock live: {lock_live}) got {:?}",
                other.map(|r| r.map(|_| "a running driver"))
            )),
        }
    }
}

/// Upper bound on reconcile passes.
const MAX_PASSES: usize = 5_000;

/// The operator commands due at this step (or pass).
fn commands_due(sc: &Scenario, at: usize) -> Vec<Command> {
    sc.commands
        .iter()
        .filter(|(s, _)| *s == at)
        .map(|(_, c)| *c)
        .collect()
}
