//! Tier 3: `teal release` on moto with the real SDK: three ECS services, each
//! behind its own ALB listener with its own alarms, deployed as one release
//! in two waves by one process.

#[path = "support/aws.rs"]
mod support;
#[path = "support/webhook.rs"]
mod webhook;

use aws_sdk_cloudwatch::types::StateValue;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

/// Three services' resources, their targets registered like ECS does.
async fn three(c: &Clients) -> (Vec<Fixture>, Vec<tokio::task::JoinHandle<()>>) {
    let mut fs = vec![];
    let mut tasks = vec![];
    for _ in 0..3 {
        let f = fixture(c, Forward::Weighted).await;
        tasks.push(register_targets_like_ecs(c, &f, None));
        fs.push(f);
    }
    (fs, tasks)
}

/// A release of `fs` (wave 1: the first two, wave 2: the third) with
/// `on_failure`; each member's strategy is `strategy`, the first wave's with
/// `keep_alive` instead of the fast one's.
fn release(
    fs: &[Fixture],
    on_failure: &str,
    first_keep_alive: &str,
) -> (Vec<tempfile::TempDir>, PathBuf) {
    let mut dirs = vec![];
    let mut paths = vec![];
    for (i, f) in fs.iter().enumerate() {
        let (dir, cfg) = config(f, FAST_CANARY);
        if i < 2 {
            let text = std::fs::read_to_string(&cfg).unwrap().replace(
                "keep_alive = \"2s\"",
                &format!("keep_alive = {first_keep_alive:?}"),
            );
            std::fs::write(&cfg, text).unwrap();
        }
        paths.push(cfg);
        dirs.push(dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.toml");
    let p = |i: usize| paths[i].display().to_string();
    std::fs::write(
        &file,
        format!(
            "[release]\nname = \"shop\"\non_failure = \"{on_failure}\"\n\n\
             [[wave]]\nname = \"backend\"\nservices = [{:?}, {:?}]\n\n\
             [[wave]]\nservices = [{:?}]\n",
            p(0),
            p(1),
            p(2)
        ),
    )
    .unwrap();
    dirs.push(dir);
    (dirs, file)
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The index of the first line matching `pred`.
fn first(lines: &[serde_json::Value], pred: impl Fn(&serde_json::Value) -> bool) -> usize {
    lines
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no such line in {lines:#?}"))
}

fn member_line<'a>(service: &'a str, state: &'a str) -> impl Fn(&serde_json::Value) -> bool + 'a {
    move |l| {
        l["event"] == "release_member" && l["service"] == service && l["standing"]["state"] == state
    }
}

/// `teal release deploy FILE --image registry.example/app:2 --output json`, running.
fn spawn_release(m: &Moto, file: &Path) -> tokio::process::Child {
    let f = file.to_str().unwrap();
    let args = [
        "release",
        "deploy",
        f,
        "--image",
        "registry.example/app:2",
        "--output",
        "json",
    ];
    teal(m, &args).spawn().unwrap()
}

/// Its stdout, once it has ended with exit 3 (rolled back).
async fn rolled_back(child: tokio::process::Child) -> String {
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    stdout
}

async fn release_status(m: &Moto, file: &Path) -> serde_json::Value {
    let f = file.to_str().unwrap();
    let (stdout, _) = run_teal(m, &["release", "status", f, "--output", "json"], 0).await;
    serde_json::from_str(stdout.lines().next().expect("a line")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_of_three_services_in_two_waves_succeeds_in_wave_order() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (fs, tasks) = three(&c).await;
    let (dirs, file) = release(&fs, "rollback-wave", "2s");
    // The wave-two service tells a webhook of its start and its end.
    let (url, told) = webhook::server(webhook::Answer::Ok, "release");
    let web_cfg = dirs[2].path().join("teal.toml");
    let mut text_cfg = std::fs::read_to_string(&web_cfg).unwrap();
    text_cfg.push_str(&format!(
        "\n[[notify.webhook]]\nurl = \"{url}\"\nevents = [\"started\", \"succeeded\"]\n"
    ));
    std::fs::write(&web_cfg, text_cfg).unwrap();
    let out = spawn_release(&m, &file).wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let told: Vec<(String, String)> = told
        .lock()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["service"].as_str().unwrap().into(),
                n["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            (fs[2].name.clone(), "started".into()),
            (fs[2].name.clone(), "succeeded".into())
        ]
    );
    let out = lines(&stdout);
    // Wave 2 starts only once both members of wave 1 hold all traffic on green.
    let (a, b, web) = (&fs[0].name, &fs[1].name, &fs[2].name);
    let web_started = first(&out, |l| {
        l["event"] == "started" && l["service"] == web.as_str()
    });
    for s in [a, b] {
        assert!(
            first(&out, member_line(s, "holding")) < web_started,
            "{s} held before {web} started"
        );
        assert!(
            first(&out, |l| l["event"] == "started"
                && l["service"] == s.as_str())
                < web_started
        );
    }
    let end = out
        .iter()
        .find(|l| l["event"] == "release_finished")
        .expect("an outcome line");
    assert_eq!(end["outcome"], "succeeded", "{stdout}");
    // One process, one SDK configuration: one API summary for the release.
    assert_eq!(
        out.iter().filter(|l| l["event"] == "api_calls").count(),
        1,
        "{stdout}"
    );
    for f in &fs {
        assert_eq!(
            weights(&c, f).await,
            (0, 100),
            "{} read back all green",
            f.name
        );
        assert_eq!(active_services(&c, f).await, vec![format!("{}-b", f.name)]);
    }
    for t in tasks {
        t.abort();
    }

    // From a new process: the release, then one member on its own.
    let st = release_status(&m, &file).await;
    assert_eq!(st["outcome"]["outcome"], "succeeded", "{st}");
    let members = st["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(
        members
            .iter()
            .all(|x| x["standing"]["state"] == "succeeded"),
        "{st}"
    );
    assert_eq!(members[2]["wave"], 1);
    let (dir, cfg) = config(&fs[2], FAST_CANARY);
    let one = status_json(&m, &cfg).await;
    drop(dir);
    assert_eq!(one["outcome"]["outcome"], "succeeded", "{one}");
    let rec = ledger_record(&c, &fs[2].listener).await.expect("a record");
    let tag = rec.release.expect("the member's record names its release");
    assert_eq!((tag.name.as_str(), tag.wave), ("shop", 1));
    assert_eq!(Some(tag.id), st["run"].as_str().map(String::from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_wave_one_rolls_back_its_wave_and_wave_two_never_starts() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (fs, tasks) = three(&c).await;
    // A long bake, so both members of wave 1 are at 50% when the alarm fires.
    let (_dirs, file) = release(&fs, "rollback-wave", "2s");
    for i in 0..2 {
        let cfg = PathBuf::from(
            std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .find(|l| l.starts_with("services = [") && l.contains(','))
                .unwrap()
                .split('"')
                .nth(1 + 2 * i)
                .unwrap(),
        );
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("bake = \"3s\"", "bake = \"60s\"");
        std::fs::write(&cfg, text).unwrap();
    }
    let child = spawn_release(&m, &file);
    wait_for_weights(&c, &fs[0], (50, 50)).await;
    wait_for_weights(&c, &fs[1], (50, 50)).await;
    set_alarm(&c, &fs[1].alarms[0], StateValue::Alarm).await;
    let stdout = rolled_back(child).await;
    for t in tasks {
        t.abort();
    }
    assert_eq!(
        weights(&c, &fs[0]).await,
        (100, 0),
        "the wave's other member went back"
    );
    assert_eq!(
        weights(&c, &fs[1]).await,
        (100, 0),
        "the failed member went back"
    );
    assert_eq!(weights(&c, &fs[2]).await, (100, 0), "wave 2 never moved");
    assert!(
        ledger_record(&c, &fs[2].listener).await.is_none(),
        "wave 2 never started"
    );
    let out = lines(&stdout);
    let sent = out
        .iter()
        .find(|l| {
            l["event"] == "phase"
                && l["to"] == "rolling_back"
                && l["service"] == fs[0].name.as_str()
        })
        .unwrap_or_else(|| panic!("{} rolled back: {stdout}", fs[0].name));
    let why = sent.to_string();
    assert!(
        why.contains("release") && why.contains(&fs[1].name),
        "{why}"
    );

    let st = release_status(&m, &file).await;
    assert_eq!(st["outcome"]["outcome"], "failed", "{st}");
    let states: Vec<&str> = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["standing"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "failed", "waiting"], "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rollback_release_an_alarm_in_wave_two_sends_wave_one_back_from_its_keep_alive() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let (fs, tasks) = three(&c).await;
    // Wave 1 keeps blue long enough for wave 2 to fail within it.
    let (_dirs, file) = release(&fs, "rollback-release", "5m");
    let child = spawn_release(&m, &file);
    wait_for_weights(&c, &fs[2], (50, 50)).await;
    assert_eq!(weights(&c, &fs[0]).await, (0, 100), "wave 1 holds green");
    set_alarm(&c, &fs[2].alarms[0], StateValue::Alarm).await;
    let stdout = rolled_back(child).await;
    for t in tasks {
        t.abort();
    }
    let out = lines(&stdout);
    for f in &fs[..2] {
        let back = first(&out, |l| {
            l["event"] == "phase" && l["to"] == "rolling_back" && l["service"] == f.name.as_str()
        });
        assert_eq!(
            out[back]["detail"]
                .as_str()
                .map(|d| d.contains("release \"shop\" failed")),
            Some(true),
            "{}",
            out[back]
        );
    }
    for f in &fs {
        assert_eq!(
            weights(&c, f).await,
            (100, 0),
            "{} read back all blue",
            f.name
        );
        assert_eq!(
            active_services(&c, f).await,
            vec![f.name.clone()],
            "blue kept, green gone"
        );
    }
    let st = release_status(&m, &file).await;
    assert_eq!(st["outcome"]["outcome"], "failed", "{st}");
    assert!(
        st["outcome"]["first"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} failed", fs[2].name)),
        "{st}"
    );
}

/// The gates of a release's members share one alarm reading: 180 alarms of
/// three members are read with two `DescribeAlarms` calls (100 names a
/// call) however many members ask, and a reading serves every member while
/// it is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alarm_read_serves_every_member_of_a_release() {
    use teal::aws::cloudwatch::AlarmGate;
    use teal::ports::Gate;
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let prefix = unique("book");
    let names: Vec<Vec<String>> = (0..3)
        .map(|g| (0..60).map(|i| format!("{prefix}-{g}-{i}")).collect())
        .collect();
    for n in names.iter().flatten() {
        put_alarm(&c, n).await;
    }
    set_alarm(&c, &names[2][59], StateValue::Alarm).await;
    // CloudWatch through the CBOR shim, as the teal process reaches it.
    let cw_sdk = sdk(&m)
        .await
        .into_builder()
        .endpoint_url(&m.cloudwatch)
        .build();
    let shared = |fresh: Duration| {
        let aws = teal::aws::Aws {
            sdk: cw_sdk.clone(),
            calls: Default::default(),
            shared: Some(std::sync::Arc::new(teal::aws::shared::Shared::new(
                fresh, fresh,
            ))),
        };
        let gates: Vec<AlarmGate> = names
            .iter()
            .map(|n| AlarmGate::new(&aws, n.clone()))
            .collect();
        (aws, gates)
    };
    let describes =
        |aws: &teal::aws::Aws| aws.calls.snapshot().accepted.get("DescribeAlarms").copied();

    // A reading that stays fresh: the first read may have begun with only its
    // own 60 names (one call); the next reads all 180 (two); the third is served.
    let (aws, gates) = shared(Duration::from_secs(3600));
    let (a, b, z) = tokio::join!(gates[0].read(), gates[1].read(), gates[2].read());
    let (a, b, z) = (a.unwrap(), b.unwrap(), z.unwrap());
    assert_eq!((a.len(), b.len(), z.len()), (60, 60, 60));
    assert!(z
        .iter()
        .any(|r| r.name == names[2][59] && r.state == teal::model::GateState::Alarm));
    assert!(
        a.iter().all(|r| names[0].contains(&r.name)),
        "each gate gets its own alarms"
    );
    let first = describes(&aws).unwrap();
    assert!(
        first <= 3,
        "one read of 60 names and one of 180 at the most: {first}"
    );
    for _ in 0..5 {
        for g in &gates {
            assert_eq!(g.read().await.unwrap().len(), 60);
        }
    }
    assert_eq!(
        describes(&aws),
        Some(first),
        "fresh readings are served from the book"
    );

    // A reading asked to be never fresh: all 180 names, two calls. It still
    // serves for the refreshes' budget (4 calls a second: half a second),
    // which the paused-clock unit test in `aws::shared` holds; here, on a
    // real clock, only its end is waited out, never raced.
    let (aws, gates) = shared(Duration::ZERO);
    for g in &gates {
        g.read().await.unwrap();
    }
    let before = describes(&aws).unwrap();
    tokio::time::sleep(Duration::from_millis(510)).await;
    gates[0].read().await.unwrap();
    assert_eq!(
        describes(&aws).unwrap() - before,
        2,
        "180 names: two calls of at most 100"
    );
}

/// A release's members share their listener reads: the weights of three
/// services' listeners in one `DescribeListeners`, and a weight change is
/// read back fresh, never from the answer before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_read_serves_every_member_of_a_release() {
    use teal::aws::elb::alb::AlbRouter;
    use teal::config::ListenerTarget;
    use teal::model::SlotWeights;
    use teal::ports::Router;
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let mut fs = Vec::new();
    for _ in 0..3 {
        fs.push(fixture(&c, Forward::Weighted).await);
    }
    let aws = teal::aws::Aws {
        sdk: sdk(&m).await,
        calls: Default::default(),
        shared: Some(std::sync::Arc::new(teal::aws::shared::Shared::new(
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        ))),
    };
    let routers: Vec<AlbRouter> = fs
        .iter()
        .map(|f| {
            AlbRouter::new(
                &aws,
                teal::config::Balancer::Application,
                ListenerTarget::Listener(f.listener.clone()),
                [f.tg_a.clone(), f.tg_b.clone()],
            )
        })
        .collect();
    let count = |op: &str| aws.calls.snapshot().accepted.get(op).copied().unwrap_or(0);

    // Every member asks once (so the answer covers all), then all read again.
    for r in &routers {
        r.weights().await.unwrap();
    }
    let before = count("DescribeListeners");
    for _ in 0..3 {
        for r in &routers {
            assert_eq!(r.weights().await.unwrap(), SlotWeights { a: 100, b: 0 });
        }
    }
    assert_eq!(
        count("DescribeListeners"),
        before,
        "served from the shared answer"
    );

    // A weight change: the writer's read-back reads its listener alone, fresh.
    routers[1]
        .set_weights(SlotWeights { a: 90, b: 10 })
        .await
        .unwrap();
    let before = count("DescribeListeners");
    assert_eq!(
        routers[1].weights().await.unwrap(),
        SlotWeights { a: 90, b: 10 }
    );
    assert_eq!(
        routers[0].weights().await.unwrap(),
        SlotWeights { a: 100, b: 0 }
    );
    assert_eq!(
        count("DescribeListeners") - before,
        1,
        "the read-back alone"
    );
}
