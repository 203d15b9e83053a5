//! Tier 3: canary analysis on ECS behind an ALB, against moto with the real
//! SDK (CloudWatch through the CBOR shim, which also evaluates the 5xx
//! share's metric math: moto does not). The test puts each target group's
//! `RequestCount` and `HTTPCode_Target_5XX_Count` every second with
//! `PutMetricData`, at a 1 s period (CloudWatch's high resolution), so a
//! bake of seconds holds enough data points.
//!
//! moto's `GetMetricData` computes no percentile statistics, so the latency
//! preset (`TargetResponseTime` p99) is not tried here: the local and
//! simulated providers judge percentiles.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::*;

const JUDGED_CANARY: &str = r#"canary = { percent = 20, bake = "8s" }
keep_alive = "1s"
poll = "1s"
green_healthy_timeout = "30s""#;

/// The fixture's config with canary analysis on the 5xx share.
fn judged_config(f: &Fixture, must_have_data: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, cfg) = config(f, JUDGED_CANARY);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        r#"
[analysis]
period = "1s"
late = "2s"
min_points = 5

[[analysis.metric]]
preset = "alb-5xx-share"
critical = true
must_have_data = {must_have_data}
"#
    ));
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg)
}

/// `targetgroup/NAME/ID` and `app/NAME/ID`, as CloudWatch names them.
fn dimensions(f: &Fixture, tg: &str) -> Vec<Dimension> {
    let resource = |arn: &str| arn.splitn(6, ':').nth(5).unwrap().to_string();
    let lb = resource(&f.listener)
        .split('/')
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    vec![
        Dimension::builder().name("LoadBalancer").value(lb).build(),
        Dimension::builder()
            .name("TargetGroup")
            .value(resource(tg))
            .build(),
    ]
}

/// Put, every second, 100 requests per target group and `errors(slot,
/// second)` 5xx answers (slot 0: blue's group A, 1: green's group B),
/// timestamped at that second, as the ALB would publish them.
fn feed(c: &Clients, f: &Fixture, errors: fn(usize, u64) -> f64) -> tokio::task::JoinHandle<()> {
    let cw = c.cw.clone();
    let groups = [dimensions(f, &f.tg_a), dimensions(f, &f.tg_b)];
    tokio::spawn(async move {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for k in 0.. {
            tick.tick().await;
            let at = aws_smithy_types::DateTime::from_secs((start + k) as i64);
            let mut data = Vec::new();
            for (slot, dims) in groups.iter().enumerate() {
                let datum = |name: &str, value: f64| {
                    MetricDatum::builder()
                        .metric_name(name)
                        .set_dimensions(Some(dims.clone()))
                        .timestamp(at)
                        .value(value)
                        .unit(StandardUnit::Count)
                        .storage_resolution(1)
                        .build()
                };
                data.push(datum("RequestCount", 100.0));
                data.push(datum("HTTPCode_Target_5XX_Count", errors(slot, k)));
            }
            cw.put_metric_data()
                .namespace("AWS/ApplicationELB")
                .set_metric_data(Some(data))
                .send()
                .await
                .expect("PutMetricData");
        }
    })
}

async fn deploy(m: &Moto, cfg: &std::path::Path, code: i32) -> String {
    let (stdout, _) = run_teal(
        m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image",
            "registry.example/app:2",
        ],
        code,
    )
    .await;
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_with_several_times_blues_5xx_share_is_rolled_back_at_the_first_step() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    // Blue 1-3%, green 6-8%: under any service-wide alarm, 2.5 to 6 times blue's share.
    let data = feed(&c, &f, |slot, k| (1 + k % 3) as f64 + 5.0 * slot as f64);
    let (_dir, cfg) = judged_config(&f, false);
    let stdout = deploy(&m, &cfg, 3).await;
    data.abort();
    ecs.abort();
    assert!(
        stdout.contains("analysis of step 1: FAIL"),
        "the first step is judged and fails: {stdout}"
    );
    let outcome = stdout
        .lines()
        .find(|l| l.contains("outcome: RolledBack"))
        .unwrap_or_else(|| panic!("rolled back: {stdout}"));
    assert!(
        outcome.contains("canary analysis failed green at step 1")
            && outcome.contains("alb-5xx-share: green 0.0")
            && outcome.contains("vs blue 0.0")
            && outcome.contains("p="),
        "the reason names the metric, both values and the test: {outcome}"
    );
    assert!(
        !stdout.contains("green 100%"),
        "never past the first step: {stdout}"
    );
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(
        active_services(&c, &f).await,
        vec![f.name.clone()],
        "green is gone"
    );
    // The alarms never fired: only the analysis saw it.
    assert!(!stdout.contains("ALARM ("), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_equal_to_blue_succeeds() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let data = feed(&c, &f, |slot, k| ((k + slot as u64) % 3) as f64);
    let (_dir, cfg) = judged_config(&f, true);
    let stdout = deploy(&m, &cfg, 0).await;
    data.abort();
    ecs.abort();
    assert!(stdout.contains("analysis of step 1: PASS"), "{stdout}");
    assert!(stdout.contains("outcome: Succeeded"), "{stdout}");
    assert_eq!(weights(&c, &f).await, (0, 100));
    // At most one GetMetricData a poll for every query of both slots (plus
    // verify's one for blue); none when no period completed since the last.
    let count = |line_start: &str, op: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.contains(line_start))
            .unwrap_or_else(|| panic!("{line_start:?} in {stdout}"));
        let at = line
            .find(&format!("{op}="))
            .unwrap_or_else(|| panic!("{op} in {line}"))
            + op.len()
            + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let reads = count("outcome: Succeeded;", "metrics.read");
    let calls = count("AWS API calls:", "GetMetricData");
    assert!(reads >= 5, "{reads} reads");
    assert!(
        calls <= reads + 1 && 2 * calls >= reads,
        "{calls} GetMetricData for {reads} reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_fails_a_metric_that_must_have_it_and_is_judged_on_what_exists_otherwise() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = judged_config(&f, true);
    let stdout = deploy(&m, &cfg, 3).await;
    assert!(
        stdout.contains("analysis metric \"alb-5xx-share\" has no data for blue (slot a)"),
        "verify warns first: {stdout}"
    );
    assert!(
        stdout.contains("over 0/0 points: no data, and it must have data: FAIL"),
        "{stdout}"
    );
    assert_eq!(weights(&c, &f).await, (100, 0));

    let (_dir, cfg) = judged_config(&f, false);
    let stdout = deploy(&m, &cfg, 0).await;
    ecs.abort();
    assert!(
        stdout.contains("analysis of step 1: PASS (no metric had data enough; alb-5xx-share: green 0.0000 vs blue 0.0000 over 0/0 points: no data)"),
        "{stdout}"
    );
    assert!(stdout.contains("outcome: Succeeded"), "{stdout}");
}
