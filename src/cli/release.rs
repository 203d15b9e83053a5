//! `teal release plan|deploy|status|rollback`: a release file's services
//! deployed as one, in waves, by this one process (`crate::release`).
//!
//! Each member keeps its own record in its own ledger, tagged with the
//! release's name, run id and wave, so `status` finds the latest run from
//! any machine by reading the members' records, and every single-service
//! command (`teal status -c api/teal.toml`, `teal rollback ...`) still works
//! on one member.

use super::args::{GreenArgs, ReleaseCommand, ReleaseDeployArgs};
use super::green::Green;
use super::progress::Mode;
use super::render::{describe, Format};
use super::session::{owner, report_api_calls, runtime, signals};
use super::Failure;
use crate::config::{Config, FleetConfig};
use crate::driver::{Driver, DriverError, EventSink, NewDeployment, Settings};
use crate::engine::{Command, Record, ReleaseTag};
use crate::events::Event;
use crate::exit::Exit;
use crate::model::{fmt_ms, fmt_time};
use crate::ports::{Clock, Ports, SystemClock};
use crate::release::runner::{self, MemberRun};
use crate::release::schedule::{At, ReleaseOutcome, Schedule, Standing};
use crate::release::{OnFailure, Release};
use crate::wiring::{Cloud, Provider, SimRun};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Run a `teal release ...` command.
pub(super) fn run(cmd: ReleaseCommand, cloud: &Cloud, format: Format) -> Result<Exit, Failure> {
    match cmd {
        ReleaseCommand::Plan { file } => plan(&Release::load(&file)?, format),
        ReleaseCommand::Deploy(args) => deploy(&Release::load(&args.file)?, &args, cloud, format),
        ReleaseCommand::Status { file } => status(&Release::load(&file)?, cloud, format),
        ReleaseCommand::Rollback { file, force } => {
            rollback(&Release::load(&file)?, cloud, force, format)
        }
    }
}

/// Members by place, wave by wave.
fn places(release: &Release) -> Vec<(At, &Config)> {
    release
        .waves
        .iter()
        .enumerate()
        .flat_map(|(w, wave)| {
            wave.members
                .iter()
                .enumerate()
                .map(move |(m, member)| ((w, m), &member.config))
        })
        .collect()
}

fn schedule_of(release: &Release) -> Schedule {
    Schedule::new(
        release.on_failure,
        release
            .waves
            .iter()
            .map(|w| {
                let names = w.members.iter().map(|m| m.config.service.clone()).collect();
                (w.max_parallel, names)
            })
            .collect(),
    )
}

fn on_failure_name(o: OnFailure) -> &'static str {
    match o {
        OnFailure::RollbackWave => "rollback-wave",
        OnFailure::RollbackRelease => "rollback-release",
        OnFailure::Continue => "continue",
    }
}

/// How long a member takes to hold all traffic: its bakes before the last step.
fn shift_ms(config: &Config) -> Result<u64, Failure> {
    let plan = config.plan()?;
    let before_last = plan.steps.len().saturating_sub(1);
    let late = plan.analysis.map_or(0, |a| a.late_ms);
    Ok(plan.steps[..before_last]
        .iter()
        .map(|s| s.bake_ms + late)
        .sum())
}

/// `teal release plan`: waves, members, schedules, and what the policy cannot reach.
fn plan(release: &Release, format: Format) -> Result<Exit, Failure> {
    let mut waves = vec![];
    let mut wave_ms = vec![];
    for wave in &release.waves {
        let mut members = vec![];
        let mut longest = 0;
        for m in &wave.members {
            let p = m.config.plan()?;
            let shift = shift_ms(&m.config)?;
            longest = longest.max(shift);
            members.push(serde_json::json!({
                "service": m.config.service,
                "config": m.config.path,
                "strategy": p.strategy,
                "steps": p.steps.iter().map(|s| s.weight).collect::<Vec<_>>(),
                "shift_ms": shift,
                "keep_alive_ms": p.keep_alive_ms,
                "containers": m.containers,
            }));
        }
        // At most max_parallel at once: the wave takes about this many rounds.
        let rounds = wave.members.len().div_ceil(wave.max_parallel) as u64;
        wave_ms.push(longest * rounds);
        waves.push(serde_json::json!({
            "name": wave.name,
            "max_parallel": wave.max_parallel,
            "members": members,
        }));
    }
    // rollback-release reaches an earlier member only while blue is kept.
    let mut warnings = vec![];
    if release.on_failure == OnFailure::RollbackRelease {
        for (w, wave) in release.waves.iter().enumerate() {
            let later: u64 = wave_ms[w + 1..].iter().sum();
            for m in &wave.members {
                let keep = m.config.plan()?.keep_alive_ms;
                if later > keep {
                    warnings.push(format!(
                        "{}: its keep-alive ({}) ends before the later waves can hold 100% \
                         (about {}); a failure there could no longer send it back: lengthen \
                         [strategy] keep_alive in {}",
                        m.config.service,
                        fmt_ms(keep),
                        fmt_ms(later),
                        m.config.path.display()
                    ));
                }
            }
        }
    }
    match format {
        Format::Json => json_line(serde_json::json!({
            "release": release.name,
            "on_failure": on_failure_name(release.on_failure),
            "waves": waves,
            "warnings": warnings,
        })),
        Format::Text => {
            let n: usize = release.waves.iter().map(|w| w.members.len()).sum();
            println!(
                "release {}: {n} service(s) in {} wave(s); on failure: {}",
                release.name,
                release.waves.len(),
                on_failure_name(release.on_failure)
            );
            for (w, wave) in release.waves.iter().enumerate() {
                let at_once = match wave.max_parallel >= wave.members.len() {
                    true => "all at once".to_string(),
                    false => format!("{} at once", wave.max_parallel),
                };
                let after = match w {
                    0 => "first".to_string(),
                    _ => format!("once every service of wave {w} holds 100% green"),
                };
                println!("wave {} {:?} ({at_once}, {after}):", w + 1, wave.name);
                for m in &wave.members {
                    let p = m.config.plan()?;
                    let steps: Vec<String> =
                        p.steps.iter().map(|s| format!("{}%", s.weight)).collect();
                    println!(
                        "  {:<20} {} ({}), holds 100% after about {}, keep-alive {}",
                        m.config.service,
                        p.strategy,
                        steps.join(" → "),
                        fmt_ms(shift_ms(&m.config)?),
                        fmt_ms(p.keep_alive_ms)
                    );
                }
            }
            for w in &warnings {
                println!("warning: {w}");
            }
        }
    }
    Ok(Exit::Succeeded)
}

/// Each member's green and deployment, every flag and file checked before any cloud call.
fn deployments(
    release: &Release,
    args: &ReleaseDeployArgs,
    run_id: &str,
    start: u64,
) -> Result<Vec<NewDeployment>, Failure> {
    let split = match &args.image_definitions {
        Some(path) => {
            let images = crate::pipeline::image_definitions(path)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            Some(
                release
                    .split_images(&images, path)
                    .map_err(Failure::Usage)?,
            )
        }
        None => None,
    };
    let mut out = vec![];
    for ((w, _), config) in places(release) {
        let ecs = matches!(config.fleet, FleetConfig::Ecs { .. });
        let asg = matches!(config.fleet, FleetConfig::Asg { .. });
        let green = match split.as_ref().and_then(|s| s.get(&config.service)) {
            Some(images) if ecs => Green::of_images(config, images.clone(), args.revision.clone())?,
            _ => {
                let flags = GreenArgs {
                    revision: args.revision.clone(),
                    image: args.image.clone().filter(|_| ecs),
                    launch_template_version: args.launch_template_version.clone().filter(|_| asg),
                    ami: args.ami.clone().filter(|_| asg),
                    ..GreenArgs::default()
                };
                Green::of(config, &flags)?
            }
        };
        out.push(NewDeployment {
            // Members start in the same second: the service keeps their ids apart.
            id: format!("{}-{}", super::deploy::deployment_id(start), config.service),
            service: config.service.clone(),
            revision: green.revision,
            plan: config.plan()?,
            gates: config.gates.names(),
            allow_alarm_at_start: config.gates.allow_alarm_at_start,
            green: green.runs,
            build: crate::pipeline::Build::from_env(),
            release: Some(ReleaseTag {
                name: release.name.clone(),
                id: run_id.to_string(),
                wave: w,
            }),
        });
    }
    Ok(out)
}

/// `--sim-fail-gate SERVICE:NAME@DURATION`, per member.
fn sim_runs(
    release: &Release,
    args: &ReleaseDeployArgs,
    start: u64,
) -> Result<Vec<SimRun>, Failure> {
    let mut fail: BTreeMap<&str, String> = BTreeMap::new();
    for spec in &args.sim_fail_gate {
        let Some((service, gate)) = spec.split_once(':') else {
            return Err(Failure::Usage(format!(
                "--sim-fail-gate takes SERVICE:NAME@DURATION, got {spec:?}"
            )));
        };
        if !places(release).iter().any(|(_, c)| c.service == service) {
            return Err(Failure::Usage(format!(
                "--sim-fail-gate {spec:?}: release {} has no service {service:?}",
                release.name
            )));
        }
        fail.insert(service, gate.to_string());
    }
    Ok(places(release)
        .iter()
        .map(|(_, c)| SimRun {
            start,
            fail_gate: fail.get(c.service.as_str()).cloned(),
            shared_time: None,
        })
        .collect())
}

/// `teal release deploy`: verify every member, then run the waves.
fn deploy(
    release: &Release,
    args: &ReleaseDeployArgs,
    cloud: &Cloud,
    format: Format,
) -> Result<Exit, Failure> {
    let start = SystemClock.now();
    let run_id = format!(
        "r-{}-{:x}",
        fmt_time(start)
            .replace(['-', ':'], "")
            .trim_end_matches('Z'),
        std::process::id()
    );
    let specs = deployments(release, args, &run_id, start)?;
    let mut sims = sim_runs(release, args, start)?;
    let places = places(release);
    let configs: Vec<&Config> = places.iter().map(|(_, c)| *c).collect();
    let simulated = configs
        .iter()
        .filter(|c| Provider::of(c) == Provider::Sim)
        .count();
    let runtime = match simulated {
        0 => runtime()?,
        n if n == configs.len() => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?,
        _ => {
            return Err(Failure::Usage(format!(
                "{}: {simulated} of {} services use the simulated provider: a release is \
                 simulated whole or not at all",
                release.path.display(),
                configs.len()
            )))
        }
    };
    runtime.block_on(async move {
        if simulated > 0 {
            // One paused clock for every member: their virtual times advance together.
            let origin = tokio::time::Instant::now();
            for s in &mut sims {
                s.shared_time = Some(origin);
            }
        }
        let (ports, calls, notifiers) =
            crate::wiring::wire_each(&configs, cloud, Some(&sims)).await?;
        // A simulated release runs on tokio's paused clock, which would cut
        // a webhook's attempts short while it waits on the network: it
        // tells nobody (`teal deploy` of one simulated service does).
        let deliveries: Vec<crate::notify::Delivery> = notifiers
            .into_iter()
            .map(|n| match simulated {
                0 => n.start(),
                _ => crate::notify::Delivery::default(),
            })
            .collect();
        let settings = Settings::new(owner());
        // Every member's read-only checks before any member changes anything.
        let mut problems = vec![];
        for ((_, config), (p, spec)) in places.iter().zip(ports.iter().zip(&specs)) {
            let v = Driver::verify(p.clone(), settings.clone(), spec).await?;
            problems.extend(
                v.problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", config.service)),
            );
        }
        if !problems.is_empty() {
            if let Some(calls) = &calls {
                report_api_calls(&calls.snapshot(), None, format);
            }
            return Err(Failure::Driver(DriverError::Preflight { problems }));
        }
        let out = Output::new(format, release, &run_id);
        out.begin();
        let members: BTreeMap<At, MemberRun> = places
            .iter()
            .zip(ports.into_iter().zip(specs))
            .zip(&deliveries)
            .map(|(((at, config), (ports, spec)), delivery)| {
                let sink = delivery.wrap(out.sink(&config.service));
                (
                    *at,
                    MemberRun {
                        ports,
                        spec,
                        sink,
                        after_step: None,
                    },
                )
            })
            .collect();
        let outcome = runner::run(
            &release.name,
            schedule_of(release),
            members,
            settings,
            Some(signals()?),
            |s, at| out.changed(s, at),
        )
        .await;
        futures::future::join_all(deliveries.into_iter().map(|d| d.finish())).await;
        out.end();
        if let Some(calls) = &calls {
            report_api_calls(&calls.snapshot(), None, format);
        }
        let outcome = outcome?;
        out.outcome(&outcome);
        Ok(match outcome {
            ReleaseOutcome::Succeeded => Exit::Succeeded,
            ReleaseOutcome::Failed { .. } => Exit::RolledBack,
            ReleaseOutcome::Incomplete => Exit::Halted,
        })
    })
}

/// Where a release's output goes: one line per event prefixed with its
/// service in a CI log, one live line per service on a terminal, JSON lines
/// with the service and release added.
struct Output {
    format: Format,
    release: String,
    run: String,
    width: usize,
    bars: Option<(
        indicatif::MultiProgress,
        BTreeMap<String, indicatif::ProgressBar>,
    )>,
    stdout: Arc<Mutex<()>>,
}

impl Output {
    fn new(format: Format, release: &Release, run: &str) -> Arc<Output> {
        let names: Vec<String> = release
            .members()
            .map(|(_, m)| m.config.service.clone())
            .collect();
        let bars = match (format, Mode::detect()) {
            (Format::Text, Mode::Live { .. }) => {
                let mp = indicatif::MultiProgress::new();
                let style =
                    indicatif::ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                        .expect("a valid template");
                let width = names.iter().map(String::len).max().unwrap_or(0);
                let bars = names
                    .iter()
                    .map(|n| {
                        let b = mp.add(indicatif::ProgressBar::new_spinner());
                        b.set_style(style.clone());
                        b.set_prefix(format!("{n:<width$}"));
                        b.set_message("waiting for its wave");
                        b.enable_steady_tick(std::time::Duration::from_millis(250));
                        (n.clone(), b)
                    })
                    .collect();
                Some((mp, bars))
            }
            _ => None,
        };
        Arc::new(Output {
            format,
            release: release.name.clone(),
            run: run.to_string(),
            width: names.iter().map(String::len).max().unwrap_or(0),
            bars,
            stdout: Arc::default(),
        })
    }

    /// A line above the live lines, or on stdout.
    fn line(&self, text: &str) {
        let _guard = self.stdout.lock().expect("stdout");
        match &self.bars {
            Some((mp, _)) => {
                let _ = mp.println(text);
            }
            None => println!("{text}"),
        }
    }

    fn json(&self, mut v: serde_json::Value) {
        v["release"] = self.release.clone().into();
        v["run"] = self.run.clone().into();
        let _guard = self.stdout.lock().expect("stdout");
        json_line(v);
    }

    fn begin(&self) {
        match self.format {
            Format::Json => self.json(serde_json::json!({ "event": "release_started" })),
            Format::Text => self.line(&format!(
                "release {} run {} started",
                self.release, self.run
            )),
        }
    }

    fn sink(self: &Arc<Output>, service: &str) -> EventSink {
        let out = self.clone();
        let service = service.to_string();
        Box::new(move |e: &Event| match out.format {
            Format::Json => {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["service"] = service.clone().into();
                out.json(v);
            }
            Format::Text => {
                let text = describe(&e.kind);
                if let Some(bar) = out.bars.as_ref().and_then(|(_, b)| b.get(&service)) {
                    bar.set_message(text.clone());
                }
                let w = out.width;
                out.line(&format!("{}  {service:<w$}  {text}", fmt_time(e.at)));
            }
        })
    }

    fn changed(&self, s: &Schedule, at: At) {
        let (service, standing) = s
            .members()
            .find(|(a, _, _)| *a == at)
            .map(|(_, n, st)| (n.to_string(), st.clone()))
            .expect("a member of the schedule");
        let wave = s.current_wave();
        match self.format {
            Format::Json => self.json(serde_json::json!({
                "event": "release_member",
                "service": service,
                "wave": at.0,
                "standing": standing,
                "current_wave": wave,
            })),
            Format::Text => {
                if let Some(bar) = self.bars.as_ref().and_then(|(_, b)| b.get(&service)) {
                    if !standing.in_flight() {
                        bar.finish_with_message(standing_words(&standing));
                    }
                }
                let w = self.width;
                self.line(&format!(
                    "release {}: {service:<w$}  {} (wave {})",
                    self.release,
                    standing_words(&standing),
                    at.0 + 1
                ));
            }
        }
    }

    fn end(&self) {
        if let Some((mp, bars)) = &self.bars {
            for b in bars.values() {
                b.finish();
            }
            let _ = mp.clear();
        }
    }

    fn outcome(&self, o: &ReleaseOutcome) {
        match self.format {
            Format::Json => {
                let (outcome, first) = match o {
                    ReleaseOutcome::Succeeded => ("succeeded", None),
                    ReleaseOutcome::Failed { first } => ("failed", Some(first)),
                    ReleaseOutcome::Incomplete => ("incomplete", None),
                };
                self.json(serde_json::json!({
                    "event": "release_finished",
                    "outcome": outcome,
                    "first": first,
                }))
            }
            Format::Text => self.line(&format!(
                "release {} run {}: {}",
                self.release,
                self.run,
                outcome_words(o)
            )),
        }
    }
}

fn json_line(v: serde_json::Value) {
    let mut v = v;
    v["schema"] = super::render::EVENTS_SCHEMA.into();
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}

fn standing_words(s: &Standing) -> String {
    match s {
        Standing::Waiting => "not started".into(),
        Standing::Shifting => "shifting".into(),
        Standing::Holding => "holds 100% green, blue kept (keep-alive)".into(),
        Standing::Retiring => "holds 100% green, retiring blue".into(),
        Standing::Succeeded => "succeeded".into(),
        Standing::Reverting { why, .. } => format!("going back to blue: {why}"),
        Standing::Failed { why, .. } => format!("failed: {why}"),
    }
}

fn outcome_words(o: &ReleaseOutcome) -> String {
    match o {
        ReleaseOutcome::Succeeded => "Succeeded: every service holds its new revision".into(),
        ReleaseOutcome::Failed { first } => format!("Failed: {first}"),
        ReleaseOutcome::Incomplete => {
            "Incomplete: stopped before every wave ran; `teal release deploy` again goes on".into()
        }
    }
}

/// Each member's recorded deployment, and the latest run of this release
/// among them.
async fn records(
    release: &Release,
    cloud: &Cloud,
) -> Result<
    (
        Vec<Ports>,
        Vec<Option<Record>>,
        Option<String>,
        Option<Arc<crate::aws::ApiCalls>>,
    ),
    Failure,
> {
    let places = places(release);
    let configs: Vec<&Config> = places.iter().map(|(_, c)| *c).collect();
    let (ports, calls, _) = crate::wiring::wire_each(&configs, cloud, None).await?;
    let mut recs = vec![];
    for p in &ports {
        recs.push(p.ledger.load().await.map_err(DriverError::Port)?);
    }
    let latest = recs
        .iter()
        .flatten()
        .filter_map(|r| {
            r.release
                .as_ref()
                .filter(|t| t.name == release.name)
                .map(|t| (r.started_at, t.id.clone()))
        })
        .max()
        .map(|(_, id)| id);
    Ok((ports, recs, latest, calls))
}

/// Whether `rec` belongs to run `id`.
fn of_run<'a>(rec: &'a Option<Record>, id: &Option<String>) -> Option<&'a Record> {
    rec.as_ref()
        .filter(|r| r.release.as_ref().map(|t| &t.id) == id.as_ref() && id.is_some())
}

/// `teal release status`: the latest run, from the members' records.
fn status(release: &Release, cloud: &Cloud, format: Format) -> Result<Exit, Failure> {
    runtime()?.block_on(async {
        let (_, recs, latest, _) = records(release, cloud).await?;
        let mut k = 0;
        let mut waves = vec![];
        let mut rows = vec![];
        for (w, wave) in release.waves.iter().enumerate() {
            let mut standings = vec![];
            for m in &wave.members {
                let rec = of_run(&recs[k], &latest);
                k += 1;
                let standing = rec.map(Standing::of);
                rows.push(serde_json::json!({
                    "service": m.config.service,
                    "wave": w,
                    "standing": standing.clone().unwrap_or(Standing::Waiting),
                    "deployment": rec.map(|r| r.id.clone()),
                    "revision": rec.map(|r| r.revision.clone()),
                    "phase": rec.map(|r| r.phase.name()),
                }));
                standings.push(standing);
            }
            let names = wave
                .members
                .iter()
                .map(|m| m.config.service.clone())
                .collect();
            waves.push((wave.max_parallel, standings, names));
        }
        let (schedule, outcome) = Schedule::from_records(release.on_failure, waves);
        let outcome = latest.as_ref().and(outcome);
        let current = schedule.current_wave();
        match format {
            Format::Json => json_line(serde_json::json!({
                "release": release.name,
                "run": latest,
                "outcome": outcome,
                "current_wave": current.filter(|_| outcome.is_none()),
                "members": rows,
            })),
            Format::Text => {
                let Some(run) = &latest else {
                    println!(
                        "release {}: no run is recorded in its services' ledgers",
                        release.name
                    );
                    return Ok(Exit::Succeeded);
                };
                let state = match (&outcome, current) {
                    (Some(o), _) => outcome_words(o),
                    (None, Some(w)) => {
                        format!("in progress, wave {} of {}", w + 1, release.waves.len())
                    }
                    (None, None) => "in progress, every wave holds; blues being retired".into(),
                };
                println!("release {} run {run}: {state}", release.name);
                let width = release
                    .members()
                    .map(|(_, m)| m.config.service.len())
                    .max()
                    .unwrap_or(0);
                for (w, wave) in release.waves.iter().enumerate() {
                    println!("  wave {} {:?}", w + 1, wave.name);
                    for ((_, name, st), row) in schedule
                        .members()
                        .filter(|(at, _, _)| at.0 == w)
                        .zip(rows.iter().filter(|r| r["wave"] == w))
                    {
                        let id = row["deployment"].as_str().unwrap_or("-");
                        let rev = row["revision"]
                            .as_str()
                            .map_or(String::new(), |r| format!(" revision {r}"));
                        println!("    {name:<width$}  {}  ({id}{rev})", standing_words(st));
                    }
                }
            }
        }
        Ok(Exit::Succeeded)
    })
}

/// `teal release rollback`: every member of the latest run that can still go back.
fn rollback(
    release: &Release,
    cloud: &Cloud,
    force: bool,
    format: Format,
) -> Result<Exit, Failure> {
    runtime()?.block_on(async {
        let (ports, recs, latest, calls) = records(release, cloud).await?;
        let Some(run) = latest.clone() else {
            return Err(Failure::Usage(format!(
                "release {}: no run is recorded in its services' ledgers",
                release.name
            )));
        };
        let mut settings = Settings::new(owner());
        settings.force = force;
        let mut work = vec![];
        for (((_, config), p), rec) in places(release).iter().zip(ports).zip(&recs) {
            let Some(rec) = of_run(rec, &latest) else {
                continue;
            };
            match Standing::of(rec) {
                Standing::Shifting | Standing::Holding => {
                    let service = config.service.clone();
                    let settings = settings.clone();
                    work.push(async move {
                        let r = super::operate::operate(
                            p,
                            settings,
                            Command::Rollback,
                            &Default::default(),
                            format,
                        )
                        .await;
                        (service, r)
                    });
                }
                other => {
                    if format == Format::Text {
                        println!(
                            "{}: {} (nothing to send back)",
                            config.service,
                            standing_words(&other)
                        );
                    }
                }
            }
        }
        if work.is_empty() && format == Format::Text {
            println!("release {} run {run}: no service can go back", release.name)
        }
        let mut exit = Exit::Succeeded;
        for (service, r) in futures::future::join_all(work).await {
            let e = match r {
                Ok(e) => e,
                Err(f) => {
                    eprintln!("error: {service}: {f}");
                    f.exit()
                }
            };
            if e.code() > exit.code() {
                exit = e;
            }
        }
        if let Some(calls) = &calls {
            report_api_calls(&calls.snapshot(), None, format);
        }
        Ok(exit)
    })
}
