//! The driver against the simulated cloud, one behaviour per test.

use std::sync::{Arc, Mutex};
use teal::config::InsufficientData;
use teal::driver::{Driver, DriverError, EventSink, NewDeployment, Settings};
use teal::engine::{Command, Outcome, Phase, Plan, Reason};
use teal::events::{Event, EventKind};
use teal::model::{GateState, SlotWeights};
use teal::sim::{SimCloud, SimFleet, SimGate, World};
use teal::strategy::expand_canary;

const T0: u64 = 1_800_000_000_000;

fn plan() -> Plan {
    Plan {
        strategy: "canary".into(),
        steps: expand_canary(10, 300_000),
        keep_alive_ms: 300_000,
        poll_ms: 10_000,
        green_healthy_timeout_ms: 600_000,
        insufficient_data: InsufficientData::Ok,
        hooks: vec![],
        test_traffic: false,
        rolling: None,
        analysis: None,
    }
}

fn spec(id: &str, revision: &str, gates: &[&str]) -> NewDeployment {
    NewDeployment {
        id: id.into(),
        service: "web".into(),
        revision: revision.into(),
        plan: plan(),
        gates: gates.iter().map(|g| g.to_string()).collect(),
        allow_alarm_at_start: false,
        green: None,
        build: None,
        release: None,
    }
}

fn cloud(gates: Vec<SimGate>) -> SimCloud {
    SimCloud::new(World::new(7, T0, "v1", 2, gates))
}

type Events = Arc<Mutex<Vec<Event>>>;

fn sink() -> (Events, EventSink) {
    let events: Events = Arc::default();
    let e = events.clone();
    (
        events,
        Box::new(move |ev: &Event| e.lock().unwrap().push(ev.clone())),
    )
}

/// A running driver for a new deployment `id` of `revision`, owned by `owner`.
fn start(
    rt: &tokio::runtime::Runtime,
    c: &SimCloud,
    owner: &str,
    id: &str,
    revision: &str,
    sink: EventSink,
) -> Driver {
    rt.block_on(Driver::start(
        c.ports(),
        Settings::new(owner),
        spec(id, revision, &[]),
        sink,
    ))
    .expect("the deployment starts")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn preflight_lists_every_problem_and_mutates_nothing() {
    let c = cloud(vec![SimGate {
        name: "already".into(),
        script: vec![(0, GateState::Alarm)],
    }]);
    c.world().fleets[1] = Some(SimFleet {
        revision: "v0".into(),
        desired: 1,
        healthy_at: Some(0),
    });
    let (_, s) = sink();
    let err = rt()
        .block_on(Driver::start(
            c.ports(),
            Settings::new("me"),
            spec("d-1", "v2", &["already", "missing"]),
            s,
        ))
        .err()
        .unwrap();
    let DriverError::Preflight { problems } = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("idle slot b already holds a fleet (revision v0)")));
    assert!(problems
        .iter()
        .any(|p| p.contains("gate \"already\" is already in ALARM")));
    assert!(problems
        .iter()
        .any(|p| p.contains("gate \"missing\" does not exist")));
    assert_eq!(c.world().mutating_calls, 0);
    assert!(c.world().ledger.is_none());
}

#[test]
fn a_split_router_with_nothing_in_flight_is_refused() {
    let c = cloud(vec![]);
    c.world().router = SlotWeights { a: 70, b: 30 };
    let (_, s) = sink();
    let err = rt()
        .block_on(Driver::start(
            c.ports(),
            Settings::new("me"),
            spec("d-1", "v2", &[]),
            s,
        ))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("the router splits traffic (a 70% / b 30%)"),
        "{err}"
    );
    assert_eq!(c.world().mutating_calls, 0);
}

#[test]
fn a_second_deploy_refuses_naming_the_first() {
    let c = cloud(vec![]);
    let rt = rt();
    let (_, s) = sink();
    let mut first = start(&rt, &c, "pipeline-1", "d-first", "v2", s);
    for _ in 0..5 {
        rt.block_on(first.step()).unwrap();
    }
    let before = c.world().mutating_calls;
    for revision in ["v2", "v3"] {
        let (_, s) = sink();
        let err = rt
            .block_on(Driver::start(
                c.ports(),
                Settings::new("pipeline-2"),
                spec("d-second", revision, &[]),
                s,
            ))
            .err()
            .unwrap();
        let DriverError::LockHeld { id, owner, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((id.as_str(), owner.as_str()), ("d-first", "pipeline-1"));
        assert!(err.to_string().contains("deployment d-first"), "{err}");
    }
    assert_eq!(
        c.world().mutating_calls,
        before,
        "a refused deploy changed something"
    );
    // The first goes on undisturbed.
    assert_eq!(rt.block_on(first.run()).unwrap(), Outcome::Succeeded);
}

#[test]
fn a_forced_takeover_names_the_previous_owner_and_the_old_driver_stops() {
    let c = cloud(vec![]);
    let rt = rt();
    let (_, s) = sink();
    let mut first = start(&rt, &c, "crashed-build", "d-1", "v2", s);
    for _ in 0..6 {
        rt.block_on(first.step()).unwrap();
    }
    let (events, s) = sink();
    let mut forced = Settings::new("operator");
    forced.force = true;
    let mut second = rt.block_on(Driver::resume(c.ports(), forced, s)).unwrap();
    assert!(events.lock().unwrap().iter().any(|e| matches!(&e.kind, EventKind::Resumed { previous_owner: Some(o), .. } if o == "crashed-build")));
    assert_eq!(rt.block_on(second.run()).unwrap(), Outcome::Succeeded);
    // The old process wakes up: its next ledger write conflicts, and it stops touching things.
    let err = rt
        .block_on(first.run())
        .expect_err("the old driver must not go on");
    assert!(matches!(err, DriverError::LockLost(_)), "{err}");
}

#[test]
fn sigterm_mid_bake_puts_traffic_back_on_blue_and_records_why() {
    let c = cloud(vec![]);
    let rt = rt();
    let (tx, rx) = tokio::sync::watch::channel(None);
    let (_, s) = sink();
    let mut d = start(&rt, &c, "me", "d-1", "v2", s).with_signals(rx);
    while c.world().router.b == 0 {
        rt.block_on(d.step()).unwrap();
    }
    assert_eq!(c.world().router, SlotWeights { a: 90, b: 10 });
    tx.send(Some("SIGTERM".into())).unwrap();
    let outcome = rt.block_on(d.run()).unwrap();
    assert!(
        matches!(outcome, Outcome::Halted { reason: Reason::Interrupted { ref signal, .. } } if signal == "SIGTERM"),
        "{outcome:?}"
    );
    let w = c.world();
    assert_eq!(w.router, SlotWeights { a: 100, b: 0 });
    assert!(
        w.fleets[1].is_some(),
        "a halted deployment keeps green for a person to look at"
    );
    assert!(matches!(
        w.record().unwrap().phase,
        Phase::Done {
            outcome: Outcome::Halted { .. },
            ..
        }
    ));
}

#[test]
fn deploying_the_same_revision_again_continues_the_deployment_in_flight() {
    let c = cloud(vec![]);
    let rt = rt();
    let (_, s) = sink();
    let mut first = start(&rt, &c, "build-1", "d-1", "v2", s);
    while c.world().router.b == 0 {
        rt.block_on(first.step()).unwrap();
    }
    drop(first); // the CodeBuild job dies
                 // Its lock lapses; the pipeline runs `teal deploy` for the same revision again.
    c.world().now += 10 * 60_000;
    let (events, s) = sink();
    let mut again = start(&rt, &c, "build-2", "d-2", "v2", s);
    assert_eq!(
        again.record().id,
        "d-1",
        "the deployment in flight is continued, not a new one started"
    );
    assert!(events.lock().unwrap().iter().any(
        |e| matches!(&e.kind, EventKind::Resumed { previous_owner: Some(o), .. } if o == "build-1")
    ));
    assert_eq!(rt.block_on(again.run()).unwrap(), Outcome::Succeeded);
    assert_eq!(c.world().router, SlotWeights { a: 0, b: 100 });
}

/// The fleet of a simulated cloud whose status reads, every one in
/// `[from, until)`, are throttled or slow (its other calls are the cloud's own).
struct ThrottledFrom {
    inner: SimCloud,
    from: u64,
    until: u64,
    /// Each read in the window waits this long on `clock`, then answers,
    /// instead of being throttled (a read waiting for its tokens behind a
    /// busy rate limit, as a release's shared reads do under load).
    slow: Option<(Arc<dyn teal::ports::Clock>, u64)>,
    /// When each status was asked for.
    reads: Mutex<Vec<u64>>,
}

impl ThrottledFrom {
    fn new(inner: &SimCloud, from: u64, until: u64) -> ThrottledFrom {
        ThrottledFrom {
            inner: inner.clone(),
            from,
            until,
            slow: None,
            reads: Mutex::default(),
        }
    }
}

#[async_trait::async_trait]
impl teal::ports::Fleet for ThrottledFrom {
    async fn status(
        &self,
        slot: teal::model::Slot,
    ) -> Result<teal::model::FleetStatus, teal::ports::PortError> {
        let now = match &self.slow {
            Some((clock, _)) => clock.now(),
            None => self.inner.world().now,
        };
        self.reads.lock().unwrap().push(now);
        match &self.slow {
            _ if !(self.from..self.until).contains(&now) => {}
            Some((clock, ms)) => clock.sleep_until(now + ms).await,
            None => {
                return Err(teal::ports::PortError::new(
                    "fleet.status",
                    teal::ports::ErrorKind::Transient,
                    "ThrottlingException: Rate exceeded",
                ))
            }
        }
        teal::ports::Fleet::status(&self.inner, slot).await
    }
    async fn provision(
        &self,
        slot: teal::model::Slot,
        green: &teal::model::Green,
        desired: u32,
    ) -> Result<(), teal::ports::PortError> {
        teal::ports::Fleet::provision(&self.inner, slot, green, desired).await
    }
    async fn remove(&self, slot: teal::model::Slot) -> Result<(), teal::ports::PortError> {
        teal::ports::Fleet::remove(&self.inner, slot).await
    }
}

/// Traffic went back to blue (100%, read back) within `ms` of `onset`.
fn blue_back_within(c: &SimCloud, onset: u64, ms: u64) {
    let w = c.world();
    let back = w
        .trace
        .weight_changes
        .iter()
        .find(|ch| ch.at >= onset && ch.to.b == 0)
        .expect("traffic went back to blue");
    assert!(
        back.at <= onset + ms,
        "blue at 100% {} ms after the onset",
        back.at - onset
    );
}

/// A simulated cloud whose `5xx` gate goes to ALARM at `onset`.
fn alarm_at(onset: u64) -> SimCloud {
    cloud(vec![SimGate {
        name: "5xx".into(),
        script: vec![(onset, GateState::Alarm)],
    }])
}

/// A runtime on tokio's paused clock, and `c`'s ports on a clock shared
/// with it: so that two sleeps (a slow call and the gate watch, a hint and
/// the poll) race in one time, where the simulated clock alone jumps to
/// whichever is asked first.
fn paused(c: &SimCloud) -> (tokio::runtime::Runtime, teal::ports::Ports) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let mut ports = c.ports();
    let origin = rt.block_on(async { tokio::time::Instant::now() });
    ports.clock = Arc::new(teal::sim::SharedTime::new(c.clone(), T0, origin));
    (rt, ports)
}

/// Run a deployment gated on `5xx`, polling every 2 s, through `ports`;
/// check it rolled back on that gate and return its events.
fn rolled_back_by_5xx(rt: &tokio::runtime::Runtime, ports: teal::ports::Ports) -> Vec<Event> {
    rolled_back_by_5xx_with(rt, ports, |_| {})
}

/// [`rolled_back_by_5xx`] with the plan changed by `plan` first.
fn rolled_back_by_5xx_with(
    rt: &tokio::runtime::Runtime,
    ports: teal::ports::Ports,
    plan: impl FnOnce(&mut Plan),
) -> Vec<Event> {
    let mut spec = spec("d-1", "v2", &["5xx"]);
    spec.plan.poll_ms = 2_000;
    plan(&mut spec.plan);
    let (events, s) = sink();
    let mut d = rt
        .block_on(Driver::start(ports, Settings::new("me"), spec, s))
        .unwrap();
    let outcome = rt.block_on(d.run()).unwrap();
    assert!(
        matches!(
            &outcome,
            Outcome::RolledBack {
                reason: Reason::GateFailed { .. }
            }
        ),
        "{outcome}"
    );
    let events = events.lock().unwrap().clone();
    events
}

#[test]
fn a_gate_failing_while_another_call_is_retried_rolls_back_without_waiting_for_the_retries() {
    // Green at 10%, polls every 2 s; from 60 s to 70 s every fleet read is
    // throttled, and at 61 s the gate fails. The retries of one read back
    // off for up to 7.75 s (250 ms doubling, six attempts), then give up: a
    // driver that reads the gates only between observations halts on the
    // throttling, with green's 10% held until then.
    let onset = T0 + 61_000;
    let c = alarm_at(onset);
    let rt = rt();
    let mut ports = c.ports();
    ports.fleet = Arc::new(ThrottledFrom::new(&c, T0 + 60_000, T0 + 70_000));
    let _ = rolled_back_by_5xx(&rt, ports);
    // A poll after the last read began, plus the read and the write.
    blue_back_within(&c, onset, 2_000 + 1_000);
}

#[test]
fn backoff_is_jittered_within_half_and_all_of_the_exponential_step() {
    use rand::SeedableRng as _;
    let retry = teal::driver::Retry {
        attempts: 6,
        base_ms: 250,
        max_ms: 8_000,
    };
    for attempt in 1..=6 {
        let cap = retry.backoff(attempt);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(attempt as u64);
        let draws: Vec<u64> = (0..200)
            .map(|_| retry.jittered(attempt, &mut rng))
            .collect();
        assert!(
            draws.iter().all(|d| *d >= cap / 2 && *d <= cap),
            "{attempt}: {draws:?}"
        );
        // Processes throttled together spread out: many distinct waits.
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(
            distinct.len() > 50,
            "attempt {attempt}: {} distinct",
            distinct.len()
        );
    }
}

/// A ledger whose first five stores of a `retiring` record are throttled
/// (backing off longer than a poll); the first such attempt also sets the
/// gate `5xx` to ALARM, as if the alarm went off while teal was recording
/// its decision to retire blue.
struct AlarmWhileRetiring {
    inner: SimCloud,
    throttled: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl teal::ports::Ledger for AlarmWhileRetiring {
    async fn load(&self) -> Result<Option<teal::engine::Record>, teal::ports::PortError> {
        teal::ports::Ledger::load(&self.inner).await
    }
    async fn store(&self, record: &teal::engine::Record) -> Result<u64, teal::ports::PortError> {
        use std::sync::atomic::Ordering;
        if record.phase == Phase::Retiring && self.throttled.fetch_add(1, Ordering::SeqCst) < 5 {
            let mut w = self.inner.world();
            let now = w.now;
            if w.gates[0].script.is_empty() {
                w.gates[0].script.push((now, GateState::Alarm));
            }
            return Err(teal::ports::PortError::new(
                "ledger.store",
                teal::ports::ErrorKind::Transient,
                "ThrottlingException: Rate exceeded",
            ));
        }
        teal::ports::Ledger::store(&self.inner, record).await
    }
}

#[test]
fn an_alarm_while_the_retirement_is_being_recorded_calls_it_off() {
    // Blue's retirement is decided on gates read OK, then its record is
    // throttled; meanwhile the alarm goes off. Until the ledger holds
    // `retiring`, the point of no return is not passed: the gate, read while
    // the store backs off, rolls back to blue, which is still there.
    let c = cloud(vec![SimGate {
        name: "5xx".into(),
        script: vec![],
    }]);
    let rt = rt();
    let mut ports = c.ports();
    ports.ledger = Arc::new(AlarmWhileRetiring {
        inner: c.clone(),
        throttled: Default::default(),
    });
    let events = rolled_back_by_5xx(&rt, ports);
    assert_retirement_called_off(&c, &events);
}

/// Blue was never retired: the ledger never held `retiring`, traffic went
/// back to blue, and the retirement was never announced (no phase event).
fn assert_retirement_called_off(c: &SimCloud, events: &[Event]) {
    let w = c.world();
    assert!(!w.trace.ledger_phases.iter().any(|(_, p)| p == "retiring"));
    assert_eq!(w.trace.weight_changes.last().map(|ch| ch.to.b), Some(0));
    assert!(!events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Phase { to, .. } if to == "retiring"
    )));
}

#[test]
fn an_alarm_while_a_queued_retire_is_being_recorded_calls_it_off() {
    // The same race with the retirement asked by an operator: `teal retire`
    // queued while green holds 100%, its record throttled while the alarm
    // goes off. The request is a decision past the point of no return like
    // the engine's own; undone by the gate, blue stays and takes the
    // traffic back. (Found by a soak: seed 1796290788689 retired blue after
    // reading the ALARM.)
    use teal::driver::{submit, Submitted};
    let c = cloud(vec![SimGate {
        name: "5xx".into(),
        script: vec![],
    }]);
    let rt = rt();
    let mut ports = c.ports();
    ports.ledger = Arc::new(AlarmWhileRetiring {
        inner: c.clone(),
        throttled: Default::default(),
    });
    let mut spec = spec("d-1", "v2", &["5xx"]);
    spec.plan.poll_ms = 2_000;
    spec.plan.keep_alive_ms = 3_600_000;
    let (events, s) = sink();
    let mut d = rt
        .block_on(Driver::start(ports, Settings::new("me"), spec, s))
        .unwrap();
    while !matches!(d.record().phase, Phase::KeepAlive { .. }) {
        assert!(rt.block_on(d.step()).unwrap().is_none(), "ended first");
    }
    let queued = rt
        .block_on(submit(
            c.ports(),
            Settings::new("ops"),
            Command::Retire,
            sink().1,
        ))
        .unwrap();
    assert!(matches!(queued, Submitted::Queued { .. }));
    let outcome = rt.block_on(d.run()).unwrap();
    assert!(
        matches!(
            &outcome,
            Outcome::RolledBack {
                reason: Reason::GateFailed { .. }
            }
        ),
        "{outcome}"
    );
    assert_retirement_called_off(&c, &events.lock().unwrap());
}

/// A router that puts off every partial weight change (the rate limit,
/// never a token), and records when each was asked for.
struct PacedPartialWeights {
    inner: SimCloud,
    asked: Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl teal::ports::Router for PacedPartialWeights {
    async fn weights(&self) -> Result<SlotWeights, teal::ports::PortError> {
        teal::ports::Router::weights(&self.inner).await
    }
    async fn set_weights(&self, w: SlotWeights) -> Result<(), teal::ports::PortError> {
        if w.a != 100 && w.b != 100 {
            self.asked.lock().unwrap().push(self.inner.world().now);
            return Err(teal::ports::PortError::paced("router.set_weights", 1_500));
        }
        teal::ports::Router::set_weights(&self.inner, w).await
    }
}

#[test]
fn a_gate_failing_during_a_weight_change_reads_the_weights_alone_before_going_back() {
    // The 10% step waits for the rate limit for good; the gate fails while
    // it waits. The fleets were read before the change and a weight change
    // does not touch them: the way back reads the weights, not the fleets.
    let onset = T0 + 90_000;
    let c = alarm_at(onset);
    let rt = rt();
    let router = Arc::new(PacedPartialWeights {
        inner: c.clone(),
        asked: Mutex::default(),
    });
    // Never throttled: only its reads are looked at.
    let fleet = Arc::new(ThrottledFrom::new(&c, 0, 0));
    let mut ports = c.ports();
    ports.router = router.clone();
    ports.fleet = fleet.clone();
    let events = rolled_back_by_5xx(&rt, ports);

    let first_change = router.asked.lock().unwrap()[0];
    assert!(first_change < onset, "the change was waiting at the onset");
    // The weights read back 100% blue (the change never went out): the
    // rollback moves nothing, and goes on to remove green.
    let back = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Phase { to, .. } if to == "rolling_back"))
        .map(|e| e.at)
        .expect("rolled back");
    assert!(back >= onset);
    let reads = fleet.reads.lock().unwrap();
    assert!(
        !reads.iter().any(|t| *t >= onset && *t <= back),
        "fleets read on the way back: {:?}",
        reads
            .iter()
            .filter(|t| **t >= first_change)
            .collect::<Vec<_>>()
    );
}

/// A gate that knows when it changed (as a release's shared alarm reading
/// does): its hint resolves at `at`.
struct Hinting {
    inner: Arc<dyn teal::ports::Gate>,
    clock: Arc<dyn teal::ports::Clock>,
    at: u64,
}

#[async_trait::async_trait]
impl teal::ports::Gate for Hinting {
    async fn read(&self) -> Result<Vec<teal::model::GateReading>, teal::ports::PortError> {
        self.inner.read().await
    }
    async fn changed(&self) {
        if self.clock.now() < self.at {
            self.clock.sleep_until(self.at).await;
        } else {
            std::future::pending::<()>().await
        }
    }
}

#[test]
fn a_gate_that_knows_it_changed_is_read_at_once_not_at_the_next_poll() {
    // Polls every 60 s; the alarm goes off 7.5 s after a poll of the 10%
    // bake. Without the hint the driver sees it at its next poll, 24 s on.
    let onset = T0 + 97_500;
    let c = alarm_at(onset);
    let (rt, mut ports) = paused(&c);
    ports.gate = Arc::new(Hinting {
        inner: ports.gate.clone(),
        clock: ports.clock.clone(),
        at: onset,
    });
    let mut spec = spec("d-1", "v2", &["5xx"]);
    spec.plan.poll_ms = 60_000;
    let mut d = rt
        .block_on(Driver::start(ports, Settings::new("me"), spec, sink().1))
        .unwrap();
    let outcome = rt.block_on(d.run()).unwrap();
    assert!(matches!(outcome, Outcome::RolledBack { .. }), "{outcome}");
    blue_back_within(&c, onset, 1_000);
}

/// A canary of 10% baked 5 min, polled every 10 s, that waits for approval.
fn approving(approve: teal::strategy::Approval) -> NewDeployment {
    let mut spec = spec("d-1", "v2", &["5xx"]);
    spec.plan.steps[0].approve = Some(approve);
    spec
}

/// When slot b (green) was first given `green`% of the traffic.
fn first_change_to(c: &SimCloud, green: u8) -> u64 {
    let w = c.world();
    let ch = w.trace.weight_changes.iter().find(|ch| ch.to.b == green);
    ch.expect("that weight was set").at
}

/// Step `d` until the record waits for approval; that wait's start.
fn until_waiting(rt: &tokio::runtime::Runtime, d: &mut Driver) -> u64 {
    for _ in 0..10_000 {
        if let Some(teal::engine::Hold::Approval { since, .. }) = d.record().hold {
            return since;
        }
        assert!(rt.block_on(d.step()).unwrap().is_none(), "ended first");
    }
    panic!("never waited for approval");
}

#[test]
fn a_kill_while_waiting_for_approval_then_resume_keeps_waiting_until_approved() {
    use teal::driver::{submit, Submitted};
    use teal::strategy::{Approval, OnTimeout};
    let c = cloud(vec![SimGate {
        name: "5xx".into(),
        script: vec![],
    }]);
    let rt = rt();
    let (events, s) = sink();
    let spec = approving(Approval {
        timeout_ms: None,
        on_timeout: OnTimeout::Rollback,
    });
    let mut d = rt
        .block_on(Driver::start(c.ports(), Settings::new("build-1"), spec, s))
        .unwrap();
    let since = until_waiting(&rt, &mut d);
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        &e.kind,
        EventKind::AwaitingApproval {
            step: 1,
            weight: 10,
            until: None,
            ..
        }
    )));
    // Killed while waiting: a new process takes it up and keeps waiting.
    drop(d);
    let mut forced = Settings::new("build-2");
    forced.force = true;
    let (events, s) = sink();
    let mut d = rt.block_on(Driver::resume(c.ports(), forced, s)).unwrap();
    for _ in 0..50 {
        assert!(rt.block_on(d.step()).unwrap().is_none());
    }
    let w = c.world().now;
    assert!(w > since + 5 * 60_000, "waited past the bake and then some");
    assert_eq!(c.world().router, SlotWeights { a: 90, b: 10 });
    assert!(matches!(
        d.record().hold,
        Some(teal::engine::Hold::Approval { since: s, until: None }) if s == since
    ));
    // `teal approve` from another machine: queued, applied by the driver;
    // recorded as sent by the approver's AWS identity, not its process.
    let mut approver = Settings::new("ana@laptop:4242");
    approver.identity = Some("arn:aws:sts::123456789012:assumed-role/ops/ana".into());
    let queued = rt
        .block_on(submit(c.ports(), approver, Command::Approve, sink().1))
        .unwrap();
    assert!(matches!(queued, Submitted::Queued { .. }));
    assert_eq!(rt.block_on(d.run()).unwrap(), Outcome::Succeeded);
    let rec = c.world().record().unwrap();
    assert_eq!(rec.approvals.len(), 1);
    assert_eq!(
        rec.approvals[0].by,
        "arn:aws:sts::123456789012:assumed-role/ops/ana"
    );
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        &e.kind,
        EventKind::Approved { step: 1, by } if by.contains("assumed-role/ops/ana")
    )));
}

#[test]
fn each_on_timeout_acts_at_its_time_on_the_simulated_provider() {
    use teal::strategy::{Approval, OnTimeout};
    let timeout = 30 * 60_000;
    for on_timeout in [OnTimeout::Rollback, OnTimeout::Promote, OnTimeout::Hold] {
        let c = cloud(vec![SimGate {
            name: "5xx".into(),
            script: vec![],
        }]);
        let rt = rt();
        let spec = approving(Approval {
            timeout_ms: Some(timeout),
            on_timeout,
        });
        let mut d = rt
            .block_on(Driver::start(
                c.ports(),
                Settings::new("me"),
                spec,
                sink().1,
            ))
            .unwrap();
        let since = until_waiting(&rt, &mut d);
        let due = since + timeout;
        match on_timeout {
            OnTimeout::Rollback => {
                let outcome = rt.block_on(d.run()).unwrap();
                assert!(
                    matches!(
                        outcome,
                        Outcome::RolledBack {
                            reason: Reason::ApprovalTimedOut { .. }
                        }
                    ),
                    "{outcome}"
                );
                let back = first_change_to(&c, 0);
                assert!(
                    (due..due + 5_000).contains(&back),
                    "back to blue at {back}, due {due}"
                );
            }
            OnTimeout::Promote => {
                assert_eq!(rt.block_on(d.run()).unwrap(), Outcome::Succeeded);
                let on = first_change_to(&c, 100);
                assert!(
                    (due..due + 5_000).contains(&on),
                    "100% green at {on}, due {due}"
                );
            }
            OnTimeout::Hold => {
                while c.world().now < due + 60 * 60_000 {
                    assert!(rt.block_on(d.step()).unwrap().is_none());
                }
                assert_eq!(c.world().router, SlotWeights { a: 90, b: 10 });
                assert!(matches!(
                    d.record().hold,
                    Some(teal::engine::Hold::Approval { until: None, .. })
                ));
            }
        }
    }
}

/// Canary analysis whose data points cannot be read in `[from, until)`
/// (every attempt throttled); read as nothing otherwise.
struct MetricsUnreadableFrom {
    clock: SimCloud,
    spec: teal::analysis::AnalysisSpec,
    from: u64,
    until: u64,
}

#[async_trait::async_trait]
impl teal::ports::Metrics for MetricsUnreadableFrom {
    fn spec(&self) -> &teal::analysis::AnalysisSpec {
        &self.spec
    }
    async fn read(
        &self,
        _q: teal::ports::MetricsQuery<'_>,
    ) -> Result<teal::analysis::MetricData, teal::ports::PortError> {
        let now = self.clock.world().now;
        // A driver that never goes back would run on for good.
        assert!(now < self.from + 600_000, "still reading at {now}");
        if (self.from..self.until).contains(&now) {
            return Err(teal::ports::PortError::new(
                "metrics.read",
                teal::ports::ErrorKind::Transient,
                "Throttling: Rate exceeded",
            ));
        }
        Ok(teal::analysis::MetricData::default())
    }
}

#[test]
fn an_alarm_read_while_the_analysis_cannot_be_read_rolls_back_at_once() {
    // Green at 10%, judged by canary analysis, polled every 2 s. From 60 s
    // on, GetMetricData is throttled for good; at 61 s the alarm goes off.
    // The alarm alone decides the way back: a driver that counts the
    // analysis's failed read as the gates' failed read drops the ALARM it
    // read with it, and holds green's 10% until its unreadable polls run out.
    let onset = T0 + 61_000;
    let c = alarm_at(onset);
    let rt = rt();
    let on_marginal = teal::analysis::OnMarginal {
        timeout_ms: None,
        action: teal::analysis::MarginalAction::Rollback,
    };
    let mut ports = c.ports();
    ports.metrics = Some(Arc::new(MetricsUnreadableFrom {
        clock: c.clone(),
        spec: teal::analysis::AnalysisSpec {
            metrics: vec![],
            scoring: teal::analysis::judge::Scoring {
                weights: Default::default(),
                pass: 90.0,
                marginal: 50.0,
            },
            period_ms: 60_000,
            late_ms: 0,
            on_marginal,
        },
        from: T0 + 60_000,
        until: u64::MAX,
    }));
    rolled_back_by_5xx_with(&rt, ports, |plan| {
        plan.analysis = Some(teal::engine::Judging {
            late_ms: 0,
            on_marginal,
        })
    });
    // A poll, plus the read and the write.
    blue_back_within(&c, onset, 2_000 + 1_000);
}

#[test]
fn a_gate_failing_while_a_read_is_in_flight_cuts_the_read_short() {
    // Green at 10%, polled every 2 s, weights and fleets read every 10 s of
    // the bake; from 50 s on each fleet read takes 30 s to answer, and at
    // 61 s the alarm goes off, a read in flight. The way back needs no fleet
    // read: a driver that waits for the read holds green's 10% until it
    // answers.
    let onset = T0 + 61_000;
    let c = alarm_at(onset);
    let (rt, mut ports) = paused(&c);
    ports.fleet = Arc::new(ThrottledFrom {
        slow: Some((ports.clock.clone(), 30_000)),
        ..ThrottledFrom::new(&c, T0 + 50_000, u64::MAX)
    });
    let events = rolled_back_by_5xx(&rt, ports);
    blue_back_within(&c, onset, 2_000 + 1_000);
    // Cut short, not failed: no retry of the read was reported.
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Retrying { op, .. } if op == "fleet.statuses")),
        "the cut-short read was retried"
    );
}

/// A before-traffic hook that fails `after_ms` after it starts, and says
/// when it ended ([`teal::ports::Hooks::ended`]), as the child process
/// runner does.
struct FailsAfter {
    after_ms: u64,
    clock: Arc<dyn teal::ports::Clock>,
    state: Arc<Mutex<teal::hooks::HookState>>,
    failed_at: Arc<Mutex<Option<u64>>>,
    ended: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl teal::ports::Hooks for FailsAfter {
    fn state(&self, _: &str, _: &teal::hooks::HookRun) -> teal::hooks::HookState {
        self.state.lock().unwrap().clone()
    }

    async fn start(
        &self,
        _: &str,
        _: &teal::hooks::HookRun,
        _: Vec<(String, String)>,
    ) -> Result<(), teal::ports::PortError> {
        use teal::hooks::HookState;
        if *self.state.lock().unwrap() != HookState::NotStarted {
            return Ok(());
        }
        *self.state.lock().unwrap() = HookState::Running;
        let (state, failed_at, ended, clock) = (
            self.state.clone(),
            self.failed_at.clone(),
            self.ended.clone(),
            self.clock.clone(),
        );
        let after = self.after_ms;
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(after)).await;
            *state.lock().unwrap() = HookState::Failed {
                detail: "smoke test: 3 of 20 checks failed".into(),
                took_ms: after,
            };
            *failed_at.lock().unwrap() = Some(clock.now());
            ended.notify_one();
        });
        Ok(())
    }

    async fn ended(&self) {
        self.ended.notified().await
    }
}

#[test]
fn a_hook_that_ends_is_acted_on_at_once_not_at_the_next_poll() {
    // Polled every 10 minutes; the before-traffic hook fails 3 s after it
    // starts. Green is removed within a second of the failure, not when
    // the next poll would have looked.
    let c = cloud(vec![]);
    let (rt, mut ports) = paused(&c);
    let failed_at = Arc::new(Mutex::new(None));
    ports.hooks = Arc::new(FailsAfter {
        after_ms: 3_000,
        clock: ports.clock.clone(),
        state: Arc::new(Mutex::new(teal::hooks::HookState::NotStarted)),
        failed_at: failed_at.clone(),
        ended: Arc::new(tokio::sync::Notify::new()),
    });
    let mut spec = spec("d-1", "v2", &[]);
    spec.plan.poll_ms = 600_000;
    spec.plan.hooks = vec![teal::hooks::HookPoint::BeforeTraffic];
    let (_, s) = sink();
    let mut d = rt
        .block_on(Driver::start(ports, Settings::new("me"), spec, s))
        .unwrap();
    let outcome = rt.block_on(d.run()).unwrap();
    assert!(matches!(&outcome, Outcome::RolledBack { .. }), "{outcome}");
    let failed = failed_at.lock().unwrap().expect("the hook ran and failed");
    let w = c.world();
    let removed = w
        .trace
        .removals
        .iter()
        .find(|r| r.slot == teal::model::Slot::B)
        .expect("green was removed");
    assert!(
        removed.at <= failed + 1_000,
        "green removed {} ms after its hook failed (poll 600000 ms)",
        removed.at - failed
    );
}
