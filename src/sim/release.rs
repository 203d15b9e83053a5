//! Releases in the simulator: a seed makes a random release of simulated
//! services (waves, `max_parallel`, `on_failure`; each member its own
//! strategy, fleet timing, alarm and injected faults), run by the real
//! runner ([`crate::release::runner`]) on one shared virtual time. Each
//! member's cloud is held to the single-deployment invariants after every
//! one of its driver's steps, and the release to its own:
//!
//! - **W, waves in order**: a member of wave k+1 first writes its record
//!   only once every member of wave k has held 100% green (under
//!   `continue`, or ended without green).
//! - **P, the policy's reach**: after a member's own failure, every member
//!   the policy covers (under `rollback-wave` its wave and the later ones,
//!   under `rollback-release` all) ends with no traffic on green, unless it
//!   had begun retiring blue before that failure began.
//! - **O, the outcome**: the release succeeded exactly when every member
//!   did, and failed exactly when one failed (a member refused at its
//!   start, which leaves no record, counts as failed).
//!
//! Not checked: P after a failure that is a refused start (no record says
//! when it happened); the runner's reaction to a signal; a kill of the
//! release's process (each member's own kill-and-resume is the single
//! deployment suite's).
//!
//! Times in different worlds are compared with a slack of one poll, a few
//! round trips and the world's time lost to injected faults: each world's
//! clock runs ahead of the shared one by the time its calls took since its
//! last wait (a timed-out call takes five seconds of its world's time).

use super::check::{Checker, Context, ROUND_TRIPS_IN_BOUND};
use super::{Faults, SharedTime, SimCloud, SimGate, World};
use crate::driver::{Driver, NewDeployment, Retry, Settings};
use crate::engine::{Outcome, Plan, Record, ReleaseTag};
use crate::model::{GateState, InsufficientData, Millis, Slot, SlotWeights};
use crate::release::runner::{self, MemberRun};
use crate::release::schedule::{ReleaseOutcome, Schedule, Standing};
use crate::release::OnFailure;
use crate::strategy::{expand_canary, expand_linear, Step};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const T0: Millis = super::scenario::T0;
const S: Millis = 1_000;
const MIN: Millis = 60 * S;

/// One member as a seed makes it.
#[derive(Debug, Clone)]
pub struct MemberScenario {
    /// Its wave.
    pub wave: usize,
    /// Its plan.
    pub plan: Plan,
    /// Green's time to health; `None`: never.
    pub healthy_after: Option<Millis>,
    /// Its gate's script (absolute times).
    pub alarm: Vec<(Millis, GateState)>,
    /// Injected faults.
    pub faults: Faults,
    /// Call latency range.
    pub latency: (Millis, Millis),
}

/// A release as a seed makes it.
#[derive(Debug, Clone)]
pub struct ReleaseScenario {
    /// The seed.
    pub seed: u64,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// `max_parallel` per wave.
    pub parallel: Vec<usize>,
    /// The members, wave by wave.
    pub members: Vec<MemberScenario>,
}

impl ReleaseScenario {
    /// The release of `seed`.
    pub fn generate(seed: u64) -> ReleaseScenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e1e_a5e5);
        let on_failure = match rng.random_range(0..3) {
            0 => OnFailure::RollbackWave,
            1 => OnFailure::RollbackRelease,
            _ => OnFailure::Continue,
        };
        let waves = rng.random_range(1..=3);
        let mut parallel = vec![];
        let mut members = vec![];
        for wave in 0..waves {
            let n = rng.random_range(1..=3);
            parallel.push(rng.random_range(1..=n));
            for _ in 0..n {
                members.push(member(&mut rng, wave));
            }
        }
        ReleaseScenario {
            seed,
            on_failure,
            parallel,
            members,
        }
    }
}

fn member(rng: &mut ChaCha8Rng, wave: usize) -> MemberScenario {
    let steps: Vec<Step> = match rng.random_range(0..3) {
        0 => expand_canary(rng.random_range(1..=50), rng.random_range(0..=5) * MIN),
        1 => expand_linear(rng.random_range(10..=50), rng.random_range(1..=12) * 10 * S),
        _ => vec![Step::new(100, 0)],
    };
    let poll_ms = [1, 2, 5, 10, 30][rng.random_range(0..5)] * S;
    let timeout = rng.random_range(1..=5) * MIN;
    let plan = Plan {
        strategy: "sim-release".into(),
        steps,
        keep_alive_ms: rng.random_range(0..=20) * MIN,
        poll_ms,
        green_healthy_timeout_ms: timeout,
        insufficient_data: InsufficientData::Ok,
        hooks: vec![],
        test_traffic: false,
        rolling: None,
        analysis: None,
    };
    let healthy_after = match rng.random_range(0..15) {
        0 => None,
        _ => Some(rng.random_range(0..=timeout * 8 / 10)),
    };
    // Onsets from 5 s on (an alarm at the very start is bad input, tested
    // apart) to well past a late wave's start.
    let alarm = match rng.random_range(0..4) {
        0 => vec![(T0 + 5 * S + rng.random_range(0..90 * MIN), GateState::Alarm)],
        _ => vec![],
    };
    let faults = match rng.random_bool(0.5) {
        true => Faults::default(),
        false => Faults {
            error_rate: rng.random_range(0.0..0.1),
            timeout_rate: rng.random_range(0.0..0.03),
            no_take_rate: rng.random_range(0.0..0.1),
            // A release's members share the rate limit: calls put off.
            paced_rate: rng.random_range(0.0..0.3),
        },
    };
    MemberScenario {
        wave,
        plan,
        healthy_after,
        alarm,
        faults,
        latency: (rng.random_range(5..=50), rng.random_range(60..=300)),
    }
}

/// What a release run came to.
#[derive(Debug)]
pub struct ReleaseRun {
    /// The scenario.
    pub scenario: ReleaseScenario,
    /// The runner's outcome (`None`: its first start was refused).
    pub outcome: Option<ReleaseOutcome>,
    /// Each member's final record's outcome (`None`: no record, or in flight).
    pub members: Vec<Option<Outcome>>,
    /// Invariants broken, in words.
    pub violations: Vec<String>,
}

impl ReleaseRun {
    /// A report a person can replay.
    pub fn render(&self) -> String {
        let sc = &self.scenario;
        let mut out = format!(
            "release seed {}: on_failure {:?}, max_parallel {:?}, outcome {:?}\n",
            sc.seed, sc.on_failure, sc.parallel, self.outcome
        );
        for (i, (m, o)) in sc.members.iter().zip(&self.members).enumerate() {
            out.push_str(&format!(
                "  m{i} wave {}: steps {:?} poll {} keep-alive {} healthy {:?} alarm {:?} faults {:?} → {}\n",
                m.wave,
                m.plan.steps.iter().map(|s| (s.weight, s.bake_ms)).collect::<Vec<_>>(),
                m.plan.poll_ms,
                m.plan.keep_alive_ms,
                m.healthy_after,
                m.alarm,
                m.faults,
                o.as_ref().map_or("no outcome".into(), |o| o.class().to_string()),
            ));
        }
        for v in &self.violations {
            out.push_str(&format!("  VIOLATION {v}\n"));
        }
        out
    }
}

/// Run the release of `seed` and judge it.
pub fn run_release_seed(seed: u64) -> ReleaseRun {
    run_release(ReleaseScenario::generate(seed))
}

/// Run a release scenario and judge it.
pub fn run_release(sc: ReleaseScenario) -> ReleaseRun {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    rt.block_on(run_on_shared_time(sc))
}

fn settings(seed: u64, owner: &str) -> Settings {
    Settings {
        owner: owner.into(),
        lock_ttl_ms: 5 * MIN,
        retry: Retry {
            attempts: 5,
            base_ms: 200,
            max_ms: super::check::RETRY_CAP_MS,
        },
        weight_attempts: 3,
        force: false,
        jitter_seed: seed,
        identity: None,
    }
}

async fn run_on_shared_time(sc: ReleaseScenario) -> ReleaseRun {
    let origin = tokio::time::Instant::now();
    let mut clouds = vec![];
    let mut checkers = vec![];
    let mut members = BTreeMap::new();
    let mut names: Vec<Vec<String>> = vec![vec![]; sc.parallel.len()];
    for (i, m) in sc.members.iter().enumerate() {
        let gate = SimGate {
            name: format!("m{i}-alarm"),
            script: m.alarm.clone(),
        };
        let mut world = World::new(sc.seed ^ (i as u64) << 8, T0, "v1", 2, vec![gate]);
        world.faults = m.faults;
        world.latency = m.latency;
        world.healthy_after = m.healthy_after;
        let cloud = SimCloud::new(world);
        let mut ports = cloud.ports();
        ports.clock = Arc::new(SharedTime::new(cloud.clone(), T0, origin));
        let checker = Arc::new(Mutex::new(Checker::new(Context {
            blue_slot: Slot::A,
            keep_alive_ms: m.plan.keep_alive_ms,
            poll_ms: m.plan.poll_ms,
            latency_max: m.latency.1,
            initial: SlotWeights { a: 100, b: 0 },
            hooks: vec![],
            retire_command: false,
            test_traffic: false,
            rolling: false,
            analysis: None,
            steps: m.plan.steps.iter().map(|s| s.weight).collect(),
            approvals: vec![],
        })));
        let at = (m.wave, names[m.wave].len());
        names[m.wave].push(format!("m{i}"));
        let (c, ch) = (cloud.clone(), checker.clone());
        members.insert(
            at,
            MemberRun {
                ports,
                spec: NewDeployment {
                    id: format!("d-sim-{}-m{i}", sc.seed),
                    service: format!("m{i}"),
                    revision: "v2".into(),
                    plan: m.plan.clone(),
                    gates: vec![format!("m{i}-alarm")],
                    allow_alarm_at_start: false,
                    green: None,
                    build: None,
                    release: Some(ReleaseTag {
                        name: "sim".into(),
                        id: format!("r-sim-{}", sc.seed),
                        wave: m.wave,
                    }),
                },
                sink: Box::new(|_| {}),
                after_step: Some(Box::new(move || {
                    let w = c.world();
                    ch.lock().expect("checker").after_step(&w);
                })),
            },
        );
        clouds.push(cloud);
        checkers.push(checker);
    }
    let schedule = Schedule::new(
        sc.on_failure,
        sc.parallel.iter().copied().zip(names).collect(),
    );
    // A run stuck past two virtual days is a violation, not a hang.
    let run = runner::run(
        "sim",
        schedule,
        members,
        settings(sc.seed, "release-runner"),
        None,
        |_, _| {},
    );
    let mut violations = vec![];
    let outcome = match tokio::time::timeout(std::time::Duration::from_secs(48 * 3600), run).await {
        Ok(Ok(o)) => Some(o),
        // The first start refused because the cloud kept failing (no bad
        // input here): the release stops having started nothing else, and
        // nothing moved traffic.
        Ok(Err(crate::driver::DriverError::Port(e))) => {
            for (i, c) in clouds.iter().enumerate() {
                let w = c.world();
                if i > 0 && !w.trace.ledger_phases.is_empty() {
                    violations.push(format!("the first start failed ({e}), yet m{i} started"));
                }
                if w.router.get(Slot::B) > 0 {
                    violations.push(format!(
                        "the first start failed ({e}), yet m{i} has traffic on green"
                    ));
                }
            }
            None
        }
        Ok(Err(e)) => {
            // A start whose preflight waited for the rate limit past an
            // alarm's onset is rightly refused for it.
            let alarm_now = clouds.iter().any(|c| {
                let w = c.world();
                w.gates
                    .iter()
                    .any(|g| g.state_at(w.now).0 == crate::model::GateState::Alarm)
            });
            let problems = e.to_string();
            let only_alarms = problems
                .lines()
                .skip(1)
                .all(|l| l.contains("already in ALARM"));
            if !(alarm_now && only_alarms) {
                violations.push(format!("the first start was refused: {e}"));
            }
            None
        }
        Err(_) => {
            violations.push("the release did not end within two virtual days".into());
            None
        }
    };
    let at_runner_end: Vec<Option<Record>> = clouds.iter().map(|c| c.world().record()).collect();
    // A driver that gave up leaves its record in flight: a person resumes it.
    for (i, c) in clouds.iter().enumerate() {
        if at_runner_end[i].as_ref().is_some_and(|r| r.in_flight()) {
            c.world().quiet = true;
            if let Ok(mut d) =
                Driver::resume(c.ports(), settings(sc.seed, "person"), Box::new(|_| {})).await
            {
                let _ = d.run().await;
            }
            checkers[i].lock().expect("checker").after_step(&c.world());
        }
    }
    let mut finals = vec![];
    for (i, c) in clouds.iter().enumerate() {
        let w = c.world();
        let rec = w.record();
        let outcome = rec.as_ref().and_then(|r| match &r.phase {
            crate::engine::Phase::Done { outcome, .. } => Some(outcome.clone()),
            _ => None,
        });
        let mut ch = checkers[i].lock().expect("checker");
        if let Some(o) = &outcome {
            ch.at_end(&w, o);
        }
        violations.extend(ch.violations.iter().map(|v| format!("m{i}: {v}")));
        finals.push(outcome);
    }
    violations.extend(release_invariants(
        &sc,
        &clouds,
        &at_runner_end,
        outcome.as_ref(),
    ));
    ReleaseRun {
        scenario: sc,
        outcome,
        members: finals,
        violations,
    }
}

/// When a world's trace first shows green (slot B) at 100%.
fn held_at(w: &World) -> Option<Millis> {
    w.trace
        .weight_changes
        .iter()
        .find(|c| c.to.get(Slot::B) == 100)
        .map(|c| c.at)
}

/// When a world's ledger first held `phase`.
fn phase_at(w: &World, phase: &str) -> Option<Millis> {
    w.trace
        .ledger_phases
        .iter()
        .find(|(_, p)| p == phase)
        .map(|(t, _)| *t)
}

/// The release's own invariants, W, P and O.
fn release_invariants(
    sc: &ReleaseScenario,
    clouds: &[SimCloud],
    at_end: &[Option<Record>],
    outcome: Option<&ReleaseOutcome>,
) -> Vec<String> {
    let mut v = vec![];
    let worlds: Vec<_> = clouds.iter().map(|c| c.world()).collect();
    // A world runs ahead of the shared clock by the time its calls took
    // since its last wait: latencies, and injected timeouts (excused time).
    let slack = |i: usize| {
        let m = &sc.members[i];
        m.plan.poll_ms + ROUND_TRIPS_IN_BOUND * m.latency.1 + worlds[i].excused
    };
    // A failure of its own (not a send-back), or a driver that gave up
    // (the runner ended, so a record still in flight is one left for a person).
    let own_failure = |r: &Option<Record>| -> bool {
        r.as_ref().is_some_and(|r| match Standing::of(r) {
            Standing::Failed { sent_back, .. } | Standing::Reverting { sent_back, .. } => {
                !sent_back
            }
            s => s.in_flight(),
        })
    };
    // W: each member's first record write comes after the wave before held.
    for (j, mj) in sc.members.iter().enumerate() {
        let Some(start) = worlds[j].trace.ledger_phases.first().map(|(t, _)| *t) else {
            continue;
        };
        for (i, mi) in sc.members.iter().enumerate() {
            if mi.wave + 1 != mj.wave {
                continue;
            }
            // A driver that gave up settled its member at a time no trace
            // shows (the runner counts it failed): nothing to compare.
            let gave_up = at_end[i].as_ref().is_some_and(|r| r.in_flight());
            if gave_up && sc.on_failure == OnFailure::Continue {
                continue;
            }
            let held = held_at(&worlds[i]);
            // Under `continue`, ending without green settles a member too:
            // whichever came first.
            let settled = match sc.on_failure {
                OnFailure::Continue => [
                    held,
                    phase_at(&worlds[i], "done:rolled_back"),
                    phase_at(&worlds[i], "done:halted"),
                    worlds[i].trace.ledger_phases.is_empty().then_some(start),
                ]
                .into_iter()
                .flatten()
                .min(),
                _ => held,
            };
            if settled.is_none_or(|t| t > start + slack(i)) {
                v.push(format!(
                    "invariant W: m{j} (wave {}) started at {start}ms, but m{i} (wave {}) had not held 100% green ({settled:?})",
                    mj.wave + 1,
                    mi.wave + 1
                ));
            }
        }
    }
    // P: after each own failure, the members the policy covers end on blue.
    let failures: Vec<(Millis, usize, usize)> = sc
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| own_failure(&at_end[*i]))
        .map(|(i, m)| {
            let w = &worlds[i];
            let began = phase_at(w, "rolling_back")
                .or(phase_at(w, "halting"))
                .or(phase_at(w, "done:rolled_back"))
                .or(phase_at(w, "done:halted"))
                .or_else(|| w.trace.ledger_phases.last().map(|(t, _)| *t))
                .unwrap_or(w.now);
            (began, i, m.wave)
        })
        .collect();
    let stops = sc.on_failure != OnFailure::Continue;
    for &(began, f, fw) in failures.iter().filter(|_| stops) {
        for (i, m) in sc.members.iter().enumerate() {
            let covered = match sc.on_failure {
                OnFailure::RollbackRelease => true,
                _ => m.wave >= fw,
            };
            if i == f || !covered || own_failure(&at_end[i]) {
                continue;
            }
            let w = &worlds[i];
            let retiring = phase_at(w, "retiring");
            let on_green = w.router.get(Slot::B) > 0;
            if on_green && retiring.is_none_or(|t| t > began + slack(i) + slack(f)) {
                v.push(format!(
                    "invariant P: m{f} failed at {began}ms; m{i} (wave {}) is covered by {:?} but ends with {}% on green (retiring since {retiring:?})",
                    m.wave + 1,
                    sc.on_failure,
                    w.router.get(Slot::B)
                ));
            }
        }
    }
    // O: the outcome matches the members' (as they were when the runner ended).
    let all_succeeded = at_end.iter().all(|r| {
        r.as_ref()
            .is_some_and(|r| Standing::of(r) == Standing::Succeeded)
    });
    // A start refused at its checks (an alarm already firing) leaves no
    // record: a member with none failed, or was never started after one did.
    let any_failed = at_end.iter().any(|r| match r {
        Some(r) => Standing::of(r).failing().is_some() || r.in_flight(),
        None => true,
    });
    match outcome {
        Some(ReleaseOutcome::Succeeded) if !all_succeeded => {
            v.push("invariant O: the release Succeeded, but not every member did".into())
        }
        Some(ReleaseOutcome::Failed { .. }) if !any_failed => {
            v.push("invariant O: the release Failed, but no member failed".into())
        }
        Some(ReleaseOutcome::Incomplete) => {
            v.push("invariant O: the release ended Incomplete with no signal".into())
        }
        _ => {}
    }
    if all_succeeded && outcome != Some(&ReleaseOutcome::Succeeded) {
        v.push(format!(
            "invariant O: every member succeeded, but the release says {outcome:?}"
        ));
    }
    v
}
