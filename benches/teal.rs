//! teal's benchmark harness: how fast teal reacts to a failing gate, what a
//! deployment costs in API calls, how it holds up with many deployments at
//! once, and its footprint. One table, printed and written to
//! `docs/BENCHMARKS.md` with the machine it ran on.
//!
//! ```text
//! benches/run.sh        # starts moto, then runs this: cargo bench --bench teal
//! ```
//!
//! It reports and never asserts a timing. A deployment that does not end as
//! the benchmark arranged (rolled back by the alarm it set, succeeded when
//! nothing failed) stops the run: a figure from a broken run means nothing.
//!
//! Knobs (environment): `BENCH_RUNS` (30 runs per reaction row),
//! `BENCH_MANY` (100 services deployed at once), `BENCH_PROBES` (10 more whose
//! alarm is set mid-bake), `BENCH_OUT` (where the table goes; `-` for
//! nowhere), `BENCH_ONLY` (one section by its title, replaced in the file),
//! `BENCH_KEEP` (a file for the release's whole `--output json`, to read a
//! probe's events from).
//!
//! Layout: one `async fn` per section, each returning its rows; `main` runs
//! them in order and writes the file.

#[path = "../tests/support/aws.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/support/local.rs"]
mod local;

use aws_sdk_cloudwatch::types::StateValue;
use local::TEAL;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use teal::local::load::Load;
use teal::model::{GateState, SlotWeights};
use teal::ports::{Gate as _, Router as _};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(m) = moto() else {
        eprintln!("the benchmark needs moto: run benches/run.sh");
        std::process::exit(2);
    };
    let runs = knob("BENCH_RUNS", 30);
    let many = knob("BENCH_MANY", 100);
    let probes = knob("BENCH_PROBES", 10);
    // One section alone (its title), the others kept as they are in the file.
    let only = std::env::var("BENCH_ONLY").ok();
    let started = Instant::now();
    let mut doc = String::new();
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "docs/BENCHMARKS.md".into());
    if let Some(title) = only {
        let body = runtime.block_on(async {
            match title.as_str() {
                "Reaction time" => reaction(&m, runs).await,
                "API cost" => api_cost(&m).await,
                "Steady bake" => steady_bake(&m).await,
                MANY => many_under_quotas(&m, many, probes).await,
                "Footprint" => footprint().await,
                other => panic!("no section {other:?}"),
            }
        });
        println!("\n## {title}\n\n{body}");
        let old = std::fs::read_to_string(&out).expect("the benchmarks file");
        std::fs::write(&out, replace_section(&old, &title, &body)).expect("write the table");
        eprintln!("section {title:?} replaced in {out}");
        return;
    }
    runtime.block_on(async {
        section(&mut doc, "Reaction time", reaction(&m, runs).await);
        section(&mut doc, "API cost", api_cost(&m).await);
        section(&mut doc, "Steady bake", steady_bake(&m).await);
        section(&mut doc, MANY, many_under_quotas(&m, many, probes).await);
        section(&mut doc, "Footprint", footprint().await);
    });
    let header = header(started.elapsed(), runs, many);
    // `benches/soak.sh` writes its own section (a soak takes a quarter of an
    // hour, so this harness does not run one): kept as it is.
    let soak = std::fs::read_to_string(&out)
        .ok()
        .and_then(|old| old.find(SOAK_HEADING).map(|i| old[i..].to_string()))
        .unwrap_or_default();
    let text = format!("{header}{doc}{soak}");
    println!("\n{text}");
    if out != "-" {
        // `cargo bench` runs in the package root.
        std::fs::write(&out, &text).expect("write the table");
        eprintln!("written to {out}");
    }
}

/// The title of the many-services section.
const MANY: &str = "Many services under AWS's quotas";

/// `doc` with section `title`'s body replaced by `body` (appended if absent).
fn replace_section(doc: &str, title: &str, body: &str) -> String {
    let heading = format!("## {title}\n");
    let Some(start) = doc.find(&heading) else {
        return format!("{doc}\n{heading}\n{body}\n");
    };
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(doc.len(), |i| start + heading.len() + i + 1);
    format!("{}{heading}\n{body}\n{}", &doc[..start], &doc[end..])
}

/// The section `benches/soak.sh` owns, always the last.
const SOAK_HEADING: &str = "## Simulator soak";

fn section(doc: &mut String, title: &str, body: String) {
    let _ = write!(doc, "## {title}\n\n{body}\n");
    eprintln!("== {title} done");
}

// ---- statistics ----

/// The nearest-rank percentile of `xs` (sorted here).
fn pct(xs: &[Duration], p: f64) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median(xs: &[Duration]) -> Duration {
    pct(xs, 50.0)
}

// ---- 1. reaction time ----

async fn reaction(m: &Moto, runs: usize) -> String {
    let mut rows = Vec::new();
    for poll in ["1s", "250ms"] {
        rows.push(reaction_moto(m, poll, runs).await);
    }
    let mut failed_note = String::new();
    for poll in ["1s", "250ms"] {
        let (row, failed) = reaction_local(poll, runs).await;
        rows.push(row);
        let _ = writeln!(
            failed_note,
            "- local, poll {poll}: client requests failed per bad canary: median {}, max {} \
             (of about {} sent per run; green took 10%, failing 30% of its requests). \
             {} more run(s) rolled back before the 2 ms watch saw the ALARM: not timed.",
            failed.median, failed.max, failed.sent_per_run, failed.untimed
        );
    }
    let mut s = String::from(
        "From the moment a gate goes to ALARM to the moment the router reads back 100% blue, \
         with green at 10% in a canary. Against moto: `SetAlarmState` on one of the alarms, then \
         `DescribeListeners` in a tight loop. Local: the proxy's 5xx gate, watched through the \
         admin API every 2 ms while green fails 30% of its requests, then the weights read back.\n\n\
         | provider | poll | runs | p50 | p99 | max | router round trip (median) | target: poll + round trip |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in &rows {
        let target = r.poll + r.rtt;
        let met = if pct(&r.samples, 99.0) <= target {
            "met"
        } else {
            "missed"
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.1} ms | {} ({met}) |",
            r.provider,
            humantime::format_duration(r.poll),
            r.samples.len(),
            ms(median(&r.samples)),
            ms(pct(&r.samples, 99.0)),
            ms(*r.samples.iter().max().expect("runs")),
            r.rtt.as_secs_f64() * 1000.0,
            ms(target),
        );
    }
    s.push('\n');
    s.push_str(&failed_note);
    s.push_str(
        "\nThe reaction is at most one poll (the gate is read once per poll) plus the gate read, \
         the weight write and its read-back; the round trip column is the weight write alone \
         (`ModifyListener` to moto, `PUT /v1/weights` to the local daemon), timed here.\n",
    );
    s
}

struct ReactionRow {
    provider: &'static str,
    poll: Duration,
    samples: Vec<Duration>,
    rtt: Duration,
}

async fn reaction_moto(m: &Moto, poll: &str, runs: usize) -> ReactionRow {
    let c = clients(m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let strategy = format!(
        r#"canary = {{ percent = 10, bake = "10m" }}
keep_alive = "1s"
poll = "{poll}"
green_healthy_timeout = "60s""#
    );
    let (_dir, cfg) = config(&f, &strategy);
    let poll_d = humantime::parse_duration(poll).expect("a duration");
    let mut samples = Vec::new();
    for i in 0..runs {
        let image = format!("registry.example/app:{}", i + 2);
        let child = teal(
            m,
            &[
                "deploy",
                "--config",
                cfg.to_str().unwrap(),
                "--image",
                &image,
            ],
        )
        .spawn()
        .expect("teal deploy");
        wait_for_weights(&c, &f, (90, 10)).await;
        // An alarm fires at any moment of teal's poll cycle, not right after
        // the shift (the worst case: a whole poll to wait).
        tokio::time::sleep(random_below(poll_d)).await;
        set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
        let alarmed = Instant::now();
        while weights(&c, &f).await != (100, 0) {}
        samples.push(alarmed.elapsed());
        let out = child.wait_with_output().await.expect("teal ends");
        expect_exit(&out, 3, "a canary with an alarm in ALARM");
        set_alarm(&c, &f.alarms[0], StateValue::Ok).await;
        eprintln!("moto, poll {poll}, run {}: {}", i + 1, ms(samples[i]));
    }
    ecs.abort();
    // The router call's round trip: the same weights written again.
    let mut rtt = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        set_listener_weights(&c, &f, 100, 0).await;
        rtt.push(t.elapsed());
    }
    ReactionRow {
        provider: "moto (ECS + ALB)",
        poll: poll_d,
        samples,
        rtt: median(&rtt),
    }
}

async fn set_listener_weights(c: &Clients, f: &Fixture, a: i32, b: i32) {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    let tuple = |tg: &str, w: i32| {
        TargetGroupTuple::builder()
            .target_group_arn(tg)
            .weight(w)
            .build()
    };
    c.elb
        .modify_listener()
        .listener_arn(&f.listener)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .target_groups(tuple(&f.tg_a, a))
                        .target_groups(tuple(&f.tg_b, b))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("ModifyListener");
}

struct Failed {
    /// Runs where teal rolled back before the watch saw the gate at ALARM.
    untimed: usize,
    median: u64,
    max: u64,
    sent_per_run: u64,
}

async fn reaction_local(poll: &str, runs: usize) -> (ReactionRow, Failed) {
    let poll_d = humantime::parse_duration(poll).expect("a duration");
    let daemon = local::Local::start(&format!(
        r#"canary = {{ percent = 10, bake = "10m" }}
keep_alive = "1s"
poll = "{poll}"
green_healthy_timeout = "30s""#
    ))
    .await;
    let load = Load::start(daemon.proxy, 8);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::new();
    let (mut failed, mut sent) = (Vec::new(), Vec::new());
    let (mut i, mut untimed) = (0, 0);
    while samples.len() < runs {
        assert!(i < 2 * runs, "teal beat the watch in {untimed} of {i} runs");
        let before = load.counts();
        // Green starts failing at a random moment of the poll cycle, after
        // its canary has begun (green is healthy and shifted to within ~1 s).
        let after = Duration::from_millis(1500) + random_below(poll_d);
        let revision = format!("v{}+fail=0.3+fail-after={}ms", i + 2, after.as_millis());
        let mut child = daemon.teal(&["deploy", "--revision", &revision]);
        let child = child.spawn().expect("teal deploy");
        // Green's canary takes traffic, then its gate goes to ALARM.
        wait_until(|| async { daemon.admin.weights().await.ok().map(|w| w.b) == Some(10) }).await;
        // Watch the gate until it reads ALARM. teal reads it too, once per
        // poll, and may act on it first: then the reaction was shorter than
        // this watch's resolution and is not timed (counted apart).
        let watching = Instant::now();
        let alarmed = loop {
            let gates = daemon.admin.read().await.unwrap_or_default();
            if gates
                .iter()
                .any(|g| g.name == "local-5xx" && g.state == GateState::Alarm)
            {
                break Some(Instant::now());
            }
            if daemon.admin.weights().await.ok().map(|w| w.b) == Some(0) {
                break None;
            }
            assert!(
                watching.elapsed() < Duration::from_secs(120),
                "no ALARM in 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        wait_until(|| async { daemon.admin.weights().await.ok().map(|w| w.b) == Some(0) }).await;
        let reaction = alarmed.map(|t| t.elapsed());
        let out = child.wait_with_output().await.expect("teal ends");
        expect_exit(&out, 3, "a canary failing 30% of its requests");
        let after = load.counts();
        failed.push(after.failed + after.errors - before.failed - before.errors);
        sent.push(after.sent - before.sent);
        match reaction {
            Some(r) => samples.push(r),
            None => untimed += 1,
        }
        eprintln!(
            "local, poll {poll}, run {}: {}, {} failed client requests",
            i + 1,
            reaction.map_or("before the watch saw ALARM".into(), ms),
            failed[i]
        );
        i += 1;
    }
    load.stop().await;
    let mut rtt = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        daemon
            .admin
            .set_weights(SlotWeights { a: 100, b: 0 })
            .await
            .expect("PUT /v1/weights");
        rtt.push(t.elapsed());
    }
    failed.sort_unstable();
    sent.sort_unstable();
    (
        ReactionRow {
            provider: "local (teal local serve)",
            poll: poll_d,
            samples,
            rtt: median(&rtt),
        },
        Failed {
            untimed,
            median: failed[failed.len() / 2],
            max: *failed.last().expect("runs"),
            sent_per_run: sent[sent.len() / 2],
        },
    )
}

/// A uniformly random duration in `[0, d)`.
fn random_below(d: Duration) -> Duration {
    d.mul_f64(rand::random::<f64>())
}

/// Poll `check` every 2 ms until it holds (at most two minutes).
async fn wait_until<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !check().await {
        assert!(t0.elapsed() < Duration::from_secs(120), "waited 2 minutes");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn expect_exit(out: &std::process::Output, code: i32, what: &str) {
    if out.status.code() != Some(code) {
        panic!(
            "{what}: teal exited {:?}, not {code}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---- 2. API cost ----

/// A canary-10-5m-shaped run with short bakes and five alarms.
const CANARY_SHORT: &str = r#"canary = { percent = 10, bake = "5s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "60s""#;

async fn api_cost(m: &Moto) -> String {
    let mut s = format!(
        "One deployment shaped like `canary-10-5m` with short bakes (`{}`), five alarms, \
         to the end (Succeeded), counted by teal itself (its closing `api_calls` event). \
         An observation is one look at the deployment: the gates, and unless a gate fails, \
         the weights and both fleets; the driver observes once per poll and again after \
         every action it takes.\n\n",
        CANARY_SHORT.replace('\n', "; ")
    );
    let c = clients(m).await;
    let mut f = fixture(&c, Forward::Weighted).await;
    for i in 0..3 {
        let name = format!("{}-extra{i}", f.name);
        put_alarm(&c, &name).await;
        f.alarms.push(name);
    }
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, CANARY_SHORT);
    let args = [
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
    ];
    let ecs_run = counted_run(m, &args, f.alarms.len()).await;
    ecs.abort();

    let mut g = asg_fixture(m).await;
    for i in 0..4 {
        let name = format!("{}-extra{i}", g.name);
        put_alarm(&c, &name).await;
        g.alarms.push(name);
    }
    let (_dir2, cfg2) = asg_config(&g, CANARY_SHORT);
    let args = [
        "deploy",
        "--config",
        cfg2.to_str().unwrap(),
        "--ami",
        AMI_GREEN,
    ];
    let asg_run = counted_run(m, &args, g.alarms.len()).await;

    for (title, run) in [
        ("ECS + ALB", &ecs_run),
        ("Auto Scaling + Route 53", &asg_run),
    ] {
        let _ = write!(
            s,
            "### {title}\n\n{} calls over {} observations; {} alarms per `DescribeAlarms` call; \
             {} weight changes (each read back).\n\n\
             | operation | calls | needed | why it is needed |\n|---|---:|---:|---|\n",
            run.total, run.observations, run.alarms, run.weight_changes
        );
        for (op, n) in &run.calls {
            let (needed, why) = needed(op, run);
            let flag = match needed {
                Some(k) if k != *n => format!("{k} (differs)"),
                Some(k) => k.to_string(),
                None => "–".into(),
            };
            let _ = writeln!(s, "| {op} | {n} | {flag} | {why} |");
        }
        s.push('\n');
        let per_obs = run.calls.get("DescribeAlarms").copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "DescribeAlarms per observation, the preflight's call aside: {:.2} \
             (target: exactly 1, one call for up to 100 alarms).\n",
            per_obs.saturating_sub(1) as f64 / run.observations as f64
        );
    }
    s
}

struct Counted {
    calls: BTreeMap<String, u64>,
    total: u64,
    observations: u64,
    weight_changes: u64,
    alarms: usize,
}

async fn counted_run(m: &Moto, args: &[&str], alarms: usize) -> Counted {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--output", "json"]);
    let out = teal(m, &full).output().await.expect("teal runs");
    expect_exit(&out, 0, "a deployment with nothing failing");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = events
        .iter()
        .find(|e| e["event"] == "api_calls")
        .expect("the api_calls event");
    let calls: BTreeMap<String, u64> =
        serde_json::from_value(summary["calls"].clone()).expect("calls per operation");
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count() as u64;
    Counted {
        total: summary["total"].as_u64().unwrap_or(0),
        observations: summary["observations"].as_u64().unwrap_or(0),
        weight_changes: count("weights_set"),
        alarms,
        calls,
    }
}

/// Calls per minute of a steady bake, one deployment and per service of a
/// release: each run twice, with a bake of 5 s and of 65 s, the rest equal;
/// the difference is one minute of baking.
async fn steady_bake(m: &Moto) -> String {
    let c = clients(m).await;
    let shape = |bake: &str| {
        format!(
            "canary = {{ percent = 10, bake = \"{bake}\" }}\nkeep_alive = \"2s\"\npoll = \"1s\"\ngreen_healthy_timeout = \"60s\""
        )
    };
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let mut single = Vec::new();
    for (i, bake) in ["5s", "65s"].into_iter().enumerate() {
        let (_dir, cfg) = config(&f, &shape(bake));
        let image = format!("registry.example/app:{}", i + 2);
        let args = [
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            &image,
        ];
        single.push(counted_run(m, &args, f.alarms.len()).await.calls);
    }
    ecs.abort();
    let members = 3;
    let fs: Vec<Fixture> = futures_join_all((0..members).map(|_| {
        let c = c.clone();
        async move { fixture(&c, Forward::Weighted).await }
    }))
    .await;
    let tasks: Vec<_> = fs
        .iter()
        .map(|f| register_targets_like_ecs(&c, f, None))
        .collect();
    let mut release = Vec::new();
    for (i, bake) in ["5s", "65s"].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut paths = Vec::new();
        let mut keep = Vec::new();
        for f in &fs {
            let (d, cfg) = config(f, &shape(bake));
            paths.push(format!("{:?}", cfg.display().to_string()));
            keep.push(d);
        }
        let file = dir.path().join("release.toml");
        std::fs::write(
            &file,
            format!(
                "[release]\nname = \"steady\"\n\n[[wave]]\nservices = [{}]\n",
                paths.join(", ")
            ),
        )
        .expect("the release file");
        let image = format!("registry.example/app:{}", i + 2);
        let args = [
            "release",
            "deploy",
            file.to_str().unwrap(),
            "--image",
            &image,
        ];
        release.push(counted_run(m, &args, 0).await.calls);
    }
    for t in tasks {
        t.abort();
    }
    let per_minute = |runs: &[BTreeMap<String, u64>], op: &str, n: f64| -> f64 {
        let get = |r: &BTreeMap<String, u64>| r.get(op).copied().unwrap_or(0) as f64;
        (get(&runs[1]) - get(&runs[0])) / n
    };
    // Before: every poll read the gates, the listener, the services, both
    // target groups' health and the ledger (one full observation a poll).
    let before: [(&str, f64); 5] = [
        ("DescribeAlarms", 60.0),
        ("DescribeListeners", 60.0),
        ("DescribeServices", 60.0),
        ("DescribeTargetHealth", 120.0),
        ("GetItem", 60.0),
    ];
    let mut s = String::from(
        "Calls in one minute of a steady bake at `poll = \"1s\"` (a canary step after its \
         weights were read back): each shape run with a bake of 5 s and of 65 s, the rest equal; \
         the difference is the minute. Before this release every poll made a full observation \
         (the figures of the first column, one call per poll each, two for the target groups' \
         health). Per service of a release: a release of three, divided by three.\n\n\
         | operation | before, one deployment | now, one deployment | now, per service of a release of 3 |\n\
         |---|---:|---:|---:|\n",
    );
    let (mut tb, mut ts, mut tr) = (0.0, 0.0, 0.0);
    for (op, b) in before {
        let (one, each) = (
            per_minute(&single, op, 1.0),
            per_minute(&release, op, members as f64),
        );
        tb += b;
        ts += one;
        tr += each;
        let _ = writeln!(s, "| {op} | {b:.0} | {one:.0} | {each:.1} |");
    }
    let _ = writeln!(s, "| all | {tb:.0} | {ts:.0} | {tr:.1} |");
    s
}

/// What a run of this shape cannot do without, per operation, and why.
fn needed(op: &str, r: &Counted) -> (Option<u64>, &'static str) {
    match op {
        "DescribeAlarms" => (
            Some(r.observations + 1),
            "every observation reads every gate in one call; one more in the preflight",
        ),
        "ModifyListener" => (Some(r.weight_changes), "one write per weight change"),
        "DescribeListeners" => (
            None,
            "the weights: once per observation that has no failing gate, plus the read-back of each change",
        ),
        "DescribeServices" => (None, "both fleets, one call per observation"),
        "CreateService" => (Some(1), "green"),
        "DeleteService" => (Some(1), "blue, after the keep-alive"),
        "UpdateService" => (Some(1), "blue to zero tasks before it is deleted"),
        "GetItem" => (
            None,
            "the ledger (DynamoDB): read at start and once per poll for queued commands",
        ),
        "PutItem" => (
            None,
            "the ledger: one conditional write per recorded change",
        ),
        "CreateAutoScalingGroup" => (Some(1), "green"),
        "DeleteAutoScalingGroup" => (Some(1), "blue, after the keep-alive"),
        "DescribeAutoScalingGroups" => (None, "both fleets, one call per observation"),
        "DescribeTargetHealth" => (None, "green's health in its target group while it comes up"),
        "ChangeResourceRecordSets" => (
            None,
            "weight changes, plus the ledger's TXT record writes",
        ),
        "ListResourceRecordSets" => (
            None,
            "the weights and the ledger record, read before each conditional write",
        ),
        "DescribeTaskDefinition" => (
            Some(2),
            "blue's task definition: in the preflight (does it have the container?) and to copy it",
        ),
        "RegisterTaskDefinition" => (Some(1), "green's: blue's with the new image"),
        "DescribeScalableTargets" | "DescribeScalingPolicies" | "RegisterScalableTarget"
        | "PutScalingPolicy" => (Some(1), "blue's scaling copied to green"),
        "DescribeLaunchTemplateVersions" | "CreateLaunchTemplateVersion" => {
            (Some(1), "green's launch template version with the new AMI")
        }
        "DescribeRules" => (None, "the listener rule, when the router is a rule"),
        "DeregisterScalableTarget" => (
            Some(1),
            "blue's scalable target, dropped before blue scales to zero (its policies would fight it)",
        ),
        "CreateOrUpdateTags" => (
            Some(1),
            "blue's group tagged with its slot before the detach, so an interrupted removal still finds it",
        ),
        "DescribePolicies" => (Some(1), "blue's scaling policies, copied to green"),
        "DetachLoadBalancerTargetGroups" => (
            Some(1),
            "blue detached first, so its target group drains before the instances go",
        ),
        "DescribeClusters" => (Some(1), "the preflight: the cluster is active"),
        "DescribeTargetGroups" => (None, "the preflight: both target groups exist"),
        "DescribeImages" => (Some(1), "the preflight: green's AMI exists and this account can launch it"),
        _ => (None, "not explained in this table yet"),
    }
}

// ---- 3. many at once ----

/// What one way of deploying the many services showed.
struct ManyRun {
    /// The member services that ended Succeeded (the probes aside).
    succeeded: usize,
    /// Requests the proxy throttled, per family, and let through.
    stats: BTreeMap<&'static str, support::throttle::FamilyStats>,
    /// Throttling answers teal counted (its own summaries).
    throttled_seen: u64,
    /// Runs that ended other than arranged, with a throttling error in their output.
    surfaced: usize,
    /// First start to last exit.
    wall: Duration,
    /// Calls teal made, in all.
    calls: u64,
    /// Calls that waited for teal's own rate limit, and their waits.
    paced: (u64, u64),
    /// Alarm set to 100% blue read back, per probe.
    reactions: Vec<Duration>,
    /// Per probe, from teal's events where the run wrote JSON: alarm set to
    /// teal reading it, and to teal reading 100% blue back.
    split: Vec<Split>,
    /// Peak RSS per process (KiB).
    rss: Vec<u64>,
    /// Per action, moto's answer times (ms) as the proxy timed them.
    answers: BTreeMap<String, Vec<u32>>,
}

/// `n` ECS services and `probes` more whose alarm is set mid-bake, deployed
/// (a) by one `teal deploy` each, all at once, and (b) as one release,
/// each through a fresh throttling proxy with AWS's buckets.
async fn many_under_quotas(m: &Moto, n: usize, probes: usize) -> String {
    let c = clients(m).await;
    let set_up = Instant::now();
    let mut fixtures = Vec::new();
    for _ in 0..n + probes {
        fixtures.push(fixture(&c, Forward::Weighted).await);
    }
    let set_up = set_up.elapsed();
    eprintln!("{} services set up in moto in {}", n + probes, ms(set_up));
    // ECS registers a service's targets itself, at no cost to the account's
    // API buckets; here the harness does, by asking moto every second.
    let registrars: Vec<_> = fixtures
        .iter()
        .map(|f| register_targets_like_ecs_every(&c, f, None, Duration::from_secs(1)))
        .collect();
    let strategy = r#"canary = { percent = 10, bake = "30s" }
keep_alive = "2s"
poll = "1s"
green_healthy_timeout = "10m""#;
    let configs: Vec<_> = fixtures.iter().map(|f| config(f, strategy)).collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    let release = dir.path().join("release.toml");
    let members: Vec<String> = configs
        .iter()
        .map(|(_, cfg)| format!("{:?}", cfg.display().to_string()))
        .collect();
    std::fs::write(
        &release,
        format!(
            "[release]\nname = \"many\"\non_failure = \"continue\"\n\n[[wave]]\nservices = [{}]\n",
            members.join(", ")
        ),
    )
    .expect("the release file");

    eprintln!("(a) {} processes", n + probes);
    let (throttle, proxied) =
        support::throttle::throttled_moto(m, support::throttle::Throttle::default()).await;
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe_all(&c, &fixtures[n..], stop.clone());
    let runs = futures_join_all(configs.iter().map(|(_, cfg)| {
        let cfg = cfg.to_str().expect("a path").to_string();
        measured_args(
            &proxied,
            vec![
                "deploy".into(),
                "--config".into(),
                cfg,
                "--image".into(),
                "registry.example/app:2".into(),
            ],
        )
    }))
    .await;
    let wall = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let probes_a = probing.await.expect("the probes");
    for (i, r) in runs.iter().enumerate() {
        let arranged = if i < n { 0 } else { 3 };
        if r.code != Some(arranged) {
            let tail: Vec<&str> = r.output.lines().rev().take(6).collect();
            eprintln!("(a) run {i} ended {:?}, not {arranged}: {:?}", r.code, tail);
        }
    }
    // Locked once: a second lock in the same expression would wait for the first.
    let separate = {
        let seen = throttle.lock().expect("stats");
        ManyRun {
            succeeded: runs[..n].iter().filter(|r| r.code == Some(0)).count(),
            stats: seen.stats.clone(),
            throttled_seen: runs.iter().map(|r| r.throttled_seen).sum(),
            surfaced: runs
                .iter()
                .enumerate()
                .filter(|(i, r)| r.code != Some(if *i < n { 0 } else { 3 }) && r.throttled)
                .count(),
            wall,
            calls: runs.iter().map(|r| r.calls).sum(),
            paced: runs
                .iter()
                .fold((0, 0), |a, r| (a.0 + r.paced.0, a.1 + r.paced.1)),
            reactions: probes_a.iter().map(|p| p.reaction).collect(),
            split: vec![],
            rss: runs.iter().map(|r| r.max_rss_kb).collect(),
            answers: seen.answer_ms.clone(),
        }
    };
    for f in &fixtures[n..] {
        set_alarm(&c, &f.alarms[0], StateValue::Ok).await;
    }

    eprintln!("(b) one release of {}", n + probes);
    let (throttle, proxied) =
        support::throttle::throttled_moto(m, support::throttle::Throttle::default()).await;
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe_all(&c, &fixtures[n..], stop.clone());
    let run = measured_args(
        &proxied,
        vec![
            "release".into(),
            "deploy".into(),
            release.to_str().expect("a path").into(),
            "--image".into(),
            "registry.example/app:3".into(),
            "--output".into(),
            "json".into(),
        ],
    )
    .await;
    let wall = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let probes_b = probing.await.expect("the probes");
    if let Some(keep) = std::env::var_os("BENCH_KEEP") {
        let mut kept = run.output.clone();
        for p in &probes_b {
            kept.push_str(&format!(
                "{{\"probe\":{:?},\"alarmed_at\":{},\"reaction_ms\":{}}}\n",
                p.service,
                p.alarmed_at,
                p.reaction.as_millis()
            ));
        }
        std::fs::write(&keep, kept).expect("BENCH_KEEP written");
    }
    let lines: Vec<Value> = run
        .output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // The summary is the `api_calls` line in JSON.
    let summary = lines
        .iter()
        .rev()
        .find(|v| v["event"] == "api_calls")
        .cloned()
        .unwrap_or_default();
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    eprintln!(
        "(b) ended {:?}: {:?}",
        run.code,
        run.output.lines().rev().take(4).collect::<Vec<_>>()
    );
    for r in &registrars {
        r.abort();
    }
    // Each member's end, from the release's `release_member` lines.
    let succeeded = fixtures[..n]
        .iter()
        .filter(|f| {
            lines.iter().any(|v| {
                v["event"] == "release_member"
                    && v["service"] == f.name.as_str()
                    && v["standing"]["state"] == "succeeded"
            })
        })
        .count();
    let one = {
        let seen = throttle.lock().expect("stats");
        ManyRun {
            succeeded,
            stats: seen.stats.clone(),
            throttled_seen: count("throttled"),
            surfaced: usize::from(run.code != Some(3) && run.throttled),
            wall,
            calls: count("total"),
            paced: (count("paced"), count("paced_ms")),
            reactions: probes_b.iter().map(|p| p.reaction).collect(),
            split: probes_b
                .iter()
                .map(|p| split_reaction(&run.output, p))
                .collect(),
            rss: vec![run.max_rss_kb],
            answers: seen.answer_ms.clone(),
        }
    };
    let mut s = format!(
        "{n} ECS services, each with its own load balancer, target groups and alarms in moto \
         (set up in {}), plus {probes} more whose alarm is set to ALARM at a random moment of \
         their bake (`{}`), through `tests/support/throttle.rs`: a proxy in front of moto with \
         AWS's token buckets per account and API family, which answers each protocol's \
         throttling error. (a) one `teal deploy` per service, all started at once; (b) one \
         `teal release deploy` of the same services (one wave, `on_failure = \"continue\"`, so \
         that the probes' rollbacks leave the others be). Each with a fresh proxy.\n\n",
        ms(set_up),
        strategy.replace('\n', "; ")
    );
    let row = |label: &str, f: &dyn Fn(&ManyRun) -> String| {
        format!("| {label} | {} | {} |\n", f(&separate), f(&one))
    };
    s.push_str("| | (a) separate processes | (b) one release |\n|---|---:|---:|\n");
    s.push_str(&row("services Succeeded", &|r| {
        format!("{} of {n}", r.succeeded)
    }));
    s.push_str(&row(
        "throttling errors met (proxy) / counted by teal",
        &|r| {
            let met: u64 = r.stats.values().map(|f| f.throttled).sum();
            format!("{met} / {}", r.throttled_seen)
        },
    ));
    s.push_str(&row(
        "runs that ended otherwise than arranged, throttling in their output",
        &|r| r.surfaced.to_string(),
    ));
    s.push_str(&row("wall time, first start to last exit", &|r| ms(r.wall)));
    s.push_str(&row("AWS API calls made (teal's count)", &|r| {
        format!(
            "{} ({:.0}/s)",
            r.calls,
            r.calls as f64 / r.wall.as_secs_f64()
        )
    }));
    s.push_str(&row(
        "calls that waited for teal's rate limit / their waits",
        &|r| format!("{} / {:.0} s", r.paced.0, r.paced.1 as f64 / 1000.0),
    ));
    s.push_str(&row(
        &format!("reaction, alarm set to 100% blue read back: median / p99 (the max) of {probes}"),
        &|r| {
            if r.reactions.is_empty() {
                return "–".into();
            }
            format!(
                "{} / {}",
                ms(median(&r.reactions)),
                ms(pct(&r.reactions, 99.0))
            )
        },
    ));
    let split_row = |label: &str, pick: fn(&Split) -> Option<Duration>| {
        row(label, &|r: &ManyRun| {
            let xs: Vec<Duration> = r.split.iter().filter_map(pick).collect();
            if xs.is_empty() {
                return "–".into();
            }
            format!(
                "{} / {} ({} probes)",
                ms(median(&xs)),
                ms(pct(&xs, 99.0)),
                xs.len()
            )
        })
    };
    s.push_str(&split_row(
        "of which: alarm set to teal reading it (its `gate` event): median / max",
        |p| p.0,
    ));
    s.push_str(&split_row(
        "alarm set to teal reading 100% blue back (its `weights_set` event): median / max",
        |p| p.1,
    ));
    s.push_str(&split_row(
        "teal reading the alarm to reading 100% blue back (the way back on moto): median / max",
        |p| Some(p.1?.saturating_sub(p.0?)),
    ));
    s.push_str(&row(
        "peak RSS: per process median / the release's process",
        &|r| {
            let mut v = r.rss.clone();
            v.sort_unstable();
            format!("{:.1} MiB", v[v.len() / 2] as f64 / 1024.0)
        },
    ));
    s.push_str(
        "\nPer API family, requests the proxy let through per second over the whole run \
         (mean, and the busiest second) against the bucket's refill rate and size, and the \
         requests it throttled:\n\n\
         | family | bucket (size, refill/s) | (a) mean / busiest second | (a) throttled | (b) mean / busiest second | (b) throttled |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let families: std::collections::BTreeSet<&str> = separate
        .stats
        .keys()
        .chain(one.stats.keys())
        .copied()
        .collect();
    for fam in families {
        let cell = |r: &ManyRun| match r.stats.get(fam) {
            Some(f) => (
                format!(
                    "{:.1} / {}",
                    f.passed as f64 / r.wall.as_secs_f64(),
                    f.peak_per_second
                ),
                f.throttled.to_string(),
                format!("{}, {}", f.burst, f.refill),
            ),
            None => ("–".into(), "–".into(), String::new()),
        };
        let (a, at, bucket_a) = cell(&separate);
        let (b, bt, bucket_b) = cell(&one);
        let bucket = if bucket_a.is_empty() {
            bucket_b
        } else {
            bucket_a
        };
        let _ = writeln!(s, "| {fam} | {bucket} | {a} | {at} | {b} | {bt} |");
    }
    s.push_str(
        "\nmoto's answer time, as the proxy timed each request it let through, for the calls \
         a reaction waits on (the shared alarm read, then the way back: the listener read, \
         written, read back) and the most frequent one: median / p99 / max.\n\n\
         | action | (a) separate processes | (b) one release |\n|---|---:|---:|\n",
    );
    for action in [
        "DescribeAlarms",
        "DescribeListeners",
        "ModifyListener",
        "DescribeServices",
    ] {
        let cell = |r: &ManyRun| match r.answers.get(action) {
            Some(xs) if !xs.is_empty() => {
                let d: Vec<Duration> = xs
                    .iter()
                    .map(|&m| Duration::from_millis(m.into()))
                    .collect();
                format!(
                    "{} / {} / {} ({} calls)",
                    ms(median(&d)),
                    ms(pct(&d, 99.0)),
                    ms(pct(&d, 100.0)),
                    d.len()
                )
            }
            _ => "–".into(),
        };
        let _ = writeln!(s, "| {action} | {} | {} |", cell(&separate), cell(&one));
    }
    s.push_str(
        "\nThe reaction is timed by the harness (alarm set on moto, the listener read on \
         moto directly every 20 ms). moto answers from one Python process, so wall times are \
         mostly moto's; the throttling is the proxy's, with AWS's numbers.\n",
    );
    s
}

/// For each probe: once green carries its canary share, at a random moment
/// of the next two seconds set its first alarm to ALARM, and time until its
/// listener reads 100% blue. Samples of the probes that got that far.
/// The probes stop looking once `stop` is set (every run has ended).
fn probe_all(
    c: &Clients,
    probes: &[Fixture],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Probe>> {
    let (c, probes) = (c.clone(), probes.to_vec());
    tokio::spawn(async move {
        let tasks: Vec<_> = probes
            .into_iter()
            .map(|f| {
                let (c, stop) = (c.clone(), stop.clone());
                tokio::spawn(async move {
                    // Once a second until the canary share is seen (the alarm
                    // waits a random part of two seconds after it anyway): ten
                    // probes at 250 ms were 40 requests a second to moto.
                    while weights(&c, &f).await != (90, 10) {
                        if stop.load(Ordering::Relaxed) {
                            eprintln!("probe {}: its canary share was never seen", f.name);
                            return None;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    tokio::time::sleep(random_below(Duration::from_secs(2))).await;
                    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
                    let alarmed = Instant::now();
                    let at = wall_ms();
                    while weights(&c, &f).await != (100, 0) {
                        if stop.load(Ordering::Relaxed) {
                            eprintln!("probe {}: never back to blue", f.name);
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Some(Probe {
                        service: f.name.clone(),
                        alarmed_at: at,
                        reaction: alarmed.elapsed(),
                    })
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(Some(d)) = t.await {
                out.push(d);
            }
        }
        out
    })
}

/// A probe's reaction split at teal's events: alarm set to teal reading it,
/// and to teal reading 100% blue back.
type Split = (Option<Duration>, Option<Duration>);

/// One probe's alarm and teal's answer to it, as the harness timed them.
struct Probe {
    service: String,
    /// When its alarm was set (ms since the Unix epoch, this machine's clock).
    alarmed_at: u64,
    /// Alarm set to 100% blue read back by the harness.
    reaction: Duration,
}

/// Now, in ms since the Unix epoch: the clock teal's events are stamped with.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A probe's reaction split at teal's own events (`--output json`): the
/// alarm set to teal reading it (`gate` ALARM), and to teal reading 100%
/// blue back from the listener (`weights_set` with green 0). `None` where
/// the output lacks them.
fn split_reaction(output: &str, p: &Probe) -> Split {
    let events: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["service"] == p.service.as_str())
        .filter(|v| {
            v["at"]
                .as_u64()
                .is_some_and(|at| at + 1_000 >= p.alarmed_at)
        })
        .collect();
    let after = |pick: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .find(|v| pick(v))
            .and_then(|v| v["at"].as_u64())
            .map(|at| Duration::from_millis(at.saturating_sub(p.alarmed_at)))
    };
    (
        after(&|v| v["event"] == "gate" && v["state"] == "ALARM"),
        after(&|v| v["event"] == "weights_set" && v["weights"]["green"] == 0),
    )
}

/// Join futures without a dependency on the `futures` crate.
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("a run"));
    }
    out
}

struct Measured {
    code: Option<i32>,
    max_rss_kb: u64,
    /// A throttling error appears in the output.
    throttled: bool,
    /// Throttling answers teal counted, from its summary.
    throttled_seen: u64,
    /// Calls that waited for teal's rate limit, and their waits (ms).
    paced: (u64, u64),
    calls: u64,
    output: String,
}

/// `teal ARGS` as a child (plain output), waited for with `wait4` to get its peak RSS.
fn measured_args(m: &Moto, args: Vec<String>) -> impl std::future::Future<Output = Measured> {
    let mut cmd = std::process::Command::new(TEAL);
    cmd.args(&args)
        .env("CI", "true")
        .envs(teal_env(m))
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION");
    async move {
        tokio::task::spawn_blocking(move || {
            let (code, _wall, max_rss_kb, output) = run_measured(cmd);
            // `AWS API calls: N ...`, `AWS throttled N call(s), ...; P call(s) waited W ms ...`
            let number_after = |prefix: &str, nth: usize| -> u64 {
                output
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .and_then(|l| {
                        l.split(|ch: char| !ch.is_ascii_digit())
                            .filter(|w| !w.is_empty())
                            .nth(nth)
                            .map(String::from)
                    })
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            Measured {
                code,
                max_rss_kb,
                throttled: output.contains("Throttl") || output.contains("Rate exceeded"),
                throttled_seen: number_after("AWS throttled ", 0),
                paced: (
                    number_after("AWS throttled ", 1),
                    number_after("AWS throttled ", 2),
                ),
                calls: number_after("AWS API calls: ", 0),
                output,
            }
        })
        .await
        .expect("the waiting thread")
    }
}

/// Run `cmd` to its end: exit code, wall time, peak RSS (KiB), stdout+stderr.
fn run_measured(mut cmd: std::process::Command) -> (Option<i32>, Duration, u64, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = dir.path().join("out");
    let file = std::fs::File::create(&log).expect("a log file");
    cmd.stdout(file.try_clone().expect("a second handle"))
        .stderr(file)
        .stdin(Stdio::null());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waiting for our own child, with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    // The child was reaped by wait4; dropping the std handle does not wait.
    drop(child);
    (code, wall, usage.ru_maxrss as u64, output)
}

// ---- 4. footprint ----

async fn footprint() -> String {
    let size = std::fs::metadata(TEAL).expect("the teal binary").len();
    // `benches/run.sh` builds with the dev profile by default (a cold release
    // build of the SDK crates alone takes ~20 minutes on 2 cores); the
    // directory the binary sits in names the profile, so the row says which.
    let profile = Path::new(TEAL)
        .parent()
        .and_then(|deps| deps.file_name())
        .map_or("?".into(), |p| match p.to_string_lossy().as_ref() {
            "debug" => "dev".to_string(),
            other => other.to_string(),
        });
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/teal");
    let release_row = match std::fs::metadata(&release) {
        Ok(m) if profile != "release" => format!(
            "| release binary built separately (`cargo build --release`, {}) | {:.1} MiB |\n",
            m.modified()
                .ok()
                .map_or("?".into(), |t| humantime::format_rfc3339_seconds(t)
                    .to_string()),
            m.len() as f64 / (1024.0 * 1024.0)
        ),
        Ok(_) => String::new(),
        Err(_) => "| release binary | not built (`cargo build --release`, ~20 min cold) |\n".into(),
    };
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ecs-alb/teal.toml");
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..20 {
        let mut cmd = std::process::Command::new(TEAL);
        cmd.args(["plan", "--config"]).arg(&config);
        let (code, wall, max_rss, output) = tokio::task::spawn_blocking(move || run_measured(cmd))
            .await
            .expect("the waiting thread");
        assert_eq!(code, Some(0), "teal plan failed:\n{output}");
        walls.push(wall);
        rss.push(max_rss);
    }
    rss.sort_unstable();
    format!(
        "| | value |\n|---|---:|\n\
         | binary of this run (`{}`, profile `{profile}`) | {:.1} MiB |\n\
         {release_row}\
         | `teal plan` wall time, process start to exit: median / max of 20 | {:.1} / {:.1} ms |\n\
         | `teal plan` peak RSS: median | {:.1} MiB |\n",
        Path::new(TEAL)
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(Path::new(TEAL))
            .display(),
        size as f64 / (1024.0 * 1024.0),
        median(&walls).as_secs_f64() * 1000.0,
        walls.iter().max().expect("runs").as_secs_f64() * 1000.0,
        rss[rss.len() / 2] as f64 / 1024.0,
    )
}

// ---- the file's head ----

fn header(elapsed: Duration, runs: usize, many: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1}", kb / 1024.0 / 1024.0));
    let git = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "# Benchmarks\n\n\
         Written by `benches/run.sh` (moto in server mode on loopback, then \
         `cargo bench --bench teal --profile dev`); the figures below are from one run of it. \
         Nothing in the test suite asserts a timing: this reports, it does not judge.\n\n\
         - machine: {cpu}, {cores} cores, {mem_gib} GiB; teal `{git}`\n\
         - {runs} runs per reaction row, {many} services deployed at once; the measuring took {}\n\
         - the proxy's throughput and latency next to nginx: [PROXY-BENCHMARK.md](PROXY-BENCHMARK.md) \
         (`benches/proxy.sh`)\n\
         - how often the canary judge is wrong: [ANALYSIS-BENCHMARK.md](ANALYSIS-BENCHMARK.md) \
         (`cargo bench --bench analysis`)\n\n",
        humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
    )
}
