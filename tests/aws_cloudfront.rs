//! A static site deployed blue/green on S3 behind CloudFront, by `teal
//! deploy` as a new user would run it: S3, the ledger table and the alarms
//! are moto's; CloudFront's distributions and continuous deployment policy
//! are `support/cloudfront_stand_in.rs` (moto has no staging distributions
//! and no policies), reached by the SDK through `AWS_ENDPOINT_URL_CLOUDFRONT`.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudfront::types::{
    DefaultCacheBehavior, DistributionConfig, HttpVersion, Origin, Origins, S3OriginConfig,
    ViewerProtocolPolicy,
};
use aws_sdk_cloudwatch::types::StateValue;
use std::sync::{Arc, Mutex};
use support::cloudfront_stand_in::{serve, Service};
use support::*;

const BUILDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/static-local/builds");

struct Site {
    bucket: String,
    distribution: String,
    cloudfront: Arc<Mutex<Service>>,
    endpoint: String,
    alarm: String,
    dir: tempfile::TempDir,
}

/// A CloudFront client of the stand-in at `endpoint`.
fn cloudfront(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_cloudfront::Client {
    aws_sdk_cloudfront::Client::from_conf(
        aws_sdk_cloudfront::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build(),
    )
}

/// A distribution through the stand-in serving `s3://bucket/site/v1`.
async fn distribution(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    bucket: &str,
    http: HttpVersion,
) -> String {
    let cf = cloudfront(sdk, endpoint);
    let origin = Origin::builder()
        .id("site")
        .domain_name(format!("{bucket}.s3.us-east-1.amazonaws.com"))
        .origin_path("/site/v1")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(unique("ref"))
        .comment("the front end")
        .enabled(true)
        .http_version(http)
        .default_root_object("index.html")
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("site")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = cf
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .expect("CreateDistribution through the stand-in");
    out.distribution.unwrap().id
}

/// A bucket holding v1 (published by `teal site publish`), a distribution
/// serving it, an alarm, and a config deploying `{BUILDS}/{revision}`.
async fn site(m: &Moto, http: HttpVersion, strategy: &str) -> Site {
    let sdk = sdk(m).await;
    let c = clients(m).await;
    let bucket = unique("front").to_lowercase();
    s3(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let to = format!("s3://{bucket}/site");
    run_teal(
        m,
        &[
            "site",
            "publish",
            "--dir",
            &format!("{BUILDS}/v1"),
            "--to",
            &to,
            "--revision",
            "v1",
        ],
        0,
    )
    .await;
    let cloudfront = Arc::new(Mutex::new(Service::default()));
    let addr = serve(cloudfront.clone(), Some(m.endpoint.clone())).await;
    let endpoint = format!("http://{addr}");
    let distribution = distribution(&sdk, &endpoint, &bucket, http).await;
    let alarm = unique("front-5xx");
    put_alarm(&c, &alarm).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("teal.toml"),
        format!(
            r#"[service]
name = "web-front"

[fleet]
kind = "s3"
bucket = "{bucket}"
prefix = "site"
site = "{BUILDS}/{{revision}}"

[router]
kind = "cloudfront"
distribution_id = "{distribution}"

[gates]
alarms = ["{alarm}"]

[strategy]
{strategy}
"#
        ),
    )
    .unwrap();
    Site {
        bucket,
        distribution,
        cloudfront,
        endpoint,
        alarm,
        dir,
    }
}

const CANARY: &str = r#"canary = { percent = 10, bake = "3s" }
keep_alive = "1s"
poll = "1s""#;

impl Site {
    fn config(&self) -> String {
        self.dir.path().join("teal.toml").display().to_string()
    }

    fn deploy(&self, m: &Moto, revision: &str) -> tokio::process::Command {
        let mut cmd = teal(
            m,
            &["deploy", "--config", &self.config(), "--revision", revision],
        );
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &self.endpoint);
        cmd
    }

    fn origin(&self, id: &str) -> Option<String> {
        self.cloudfront.lock().unwrap().origin_path(id)
    }

    fn staging(&self) -> Option<String> {
        self.cloudfront.lock().unwrap().staging_id()
    }

    fn policy(&self) -> Option<(bool, f32)> {
        self.cloudfront
            .lock()
            .unwrap()
            .policy_of(&self.distribution)
    }

    /// The writes the stand-in answered: (method, path, If-Match).
    fn writes(&self) -> Vec<(String, String, Option<String>)> {
        self.cloudfront
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(m, _, _)| m != "GET")
            .cloned()
            .collect()
    }
}

/// Wait (a minute at most) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(t0.elapsed().as_secs() < 60, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_site_is_promoted_through_a_staging_distribution_and_a_failing_one_rolls_back() {
    let Some(m) = moto() else { return };
    let s = site(&m, HttpVersion::Http2, CANARY).await;

    // v2: a staging copy serves it to 10%, then its config is promoted.
    let (stdout, stderr) = run(s.deploy(&m, "v2"), &["deploy v2"], 0).await;
    assert!(
        stdout.contains("weights now blue 90% / green 10% (read back)"),
        "{stdout}"
    );
    let staging = s.staging().expect("a staging distribution was made");
    assert_eq!(
        s.origin(&s.distribution).as_deref(),
        Some("/site/v2"),
        "{stdout}{stderr}"
    );
    assert_eq!(s.origin(&staging).as_deref(), Some("/site/v2"));
    assert!(
        !s.policy().unwrap().0,
        "the policy is disabled after the promotion"
    );
    let writes = s.writes();
    let paths: Vec<&str> = writes.iter().map(|(_, p, _)| p.as_str()).collect();
    assert!(paths.iter().any(|p| p.ends_with("/copy")), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.ends_with("/promote-staging-config")),
        "{paths:?}"
    );
    for (method, path, if_match) in &writes {
        let creates =
            path.ends_with("/distribution") || path.ends_with("/continuous-deployment-policy");
        assert!(
            creates || if_match.is_some(),
            "{method} {path} without If-Match"
        );
    }
    // v2's files, blue's assets carried, and the slots' keys.
    let v2 = keys(&s3(&sdk(&m).await), &s.bucket, "site/v2/").await;
    assert!(
        v2.contains(&"site/v2/assets/app.9a8b7c6d.js".to_string()),
        "{v2:?}"
    );
    let slots = keys(&s3(&sdk(&m).await), &s.bucket, "site/.teal-slots/").await;
    let named = |r: &str| slots.iter().any(|k| k.contains(&format!("/{r}@")));
    assert!(named("v2") && slots.len() == 1, "{slots:?}");
    assert!(!named("v1"), "blue's slot was retired: {slots:?}");
    // v2 again: it is blue's prefix, so it cannot be green too.
    let (stdout, stderr) = run(s.deploy(&m, "v2"), &["deploy v2 again"], 2).await;
    assert!(
        stderr.contains("--revision v2: slot b holds it (s3://"),
        "{stdout}{stderr}"
    );

    // v3: its staging share's alarm fires mid-bake; back to v2.
    let child = s.deploy(&m, "v3").spawn().unwrap();
    until("v3 takes 10% through the staging distribution", || {
        s.policy() == Some((true, 0.1)) && s.origin(&staging).as_deref() == Some("/site/v3")
    })
    .await;
    assert_eq!(
        s.origin(&s.distribution).as_deref(),
        Some("/site/v2"),
        "the primary stays on blue"
    );
    set_alarm(&clients(&m).await, &s.alarm, StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "rolled back:\n{stdout}\n{stderr}"
    );
    assert_eq!(s.origin(&s.distribution).as_deref(), Some("/site/v2"));
    assert!(
        !s.policy().unwrap().0,
        "the policy is disabled: no request reaches v3"
    );

    // `status` from a new process reads blue back at 100%.
    let mut cmd = teal(&m, &["status", "--config", &s.config(), "--output", "json"]);
    cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
    let (stdout, _) = run(cmd, &["status"], 0).await;
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(status["weights_actual"]["blue"], 100, "{status}");
    assert_eq!(status["blue"]["revision"], "v2", "{status}");
    assert_eq!(status["outcome"]["outcome"], "rolled_back", "{status}");

    // A prune keeps what the distributions serve: v2 (primary) and v3 (the
    // staging copy, its slot retired by the rollback), not only the newest.
    let to = format!("s3://{}/site", s.bucket);
    let v1 = format!("{BUILDS}/v1");
    let args = [
        "--output",
        "json",
        "site",
        "publish",
        "--dir",
        &v1,
        "--to",
        &to,
        "--revision",
        "v4",
        "--keep",
        "1",
        "--distribution",
        &s.distribution,
    ];
    let mut cmd = teal(&m, &args);
    cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
    let (stdout, _) = run(cmd, &args, 0).await;
    let out: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(out["pruned"]["deleted"], serde_json::json!(["v1"]), "{out}");
    let mut kept: Vec<&str> = out["pruned"]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["v2", "v3", "v4"], "{out}");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_write() {
    let Some(m) = moto() else { return };
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    let refused = |needle: &'static str, args: Vec<String>, env: Vec<(&'static str, String)>| {
        let m = &m;
        let s = &s;
        async move {
            let mut cmd = teal(m, &args.iter().map(String::as_str).collect::<Vec<_>>());
            cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
            cmd.envs(env);
            let (stdout, stderr) = run(cmd, &["deploy"], 2).await;
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(needle), "{needle:?} not in:\n{all}");
        }
    };
    let deploy = |config: &str, revision: &str| {
        vec![
            "deploy".into(),
            "--config".into(),
            config.into(),
            "--revision".into(),
            revision.into(),
        ]
    };
    let text = std::fs::read_to_string(s.config()).unwrap();
    let variant = |name: &str, text: String| {
        let path = s.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    // The revision the distribution serves before teal: blue's own prefix.
    refused(
        "--revision v1: the distribution serves it as blue (s3://",
        deploy(&s.config(), "v1"),
        vec![],
    )
    .await;
    // A revision with no build, an empty build.
    refused("fleet.site", deploy(&s.config(), "v9"), vec![]).await;
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("v4")).unwrap();
    let c = variant(
        "empty.toml",
        text.replace(BUILDS, &empty.path().display().to_string()),
    );
    refused("no files", deploy(&c, "v4"), vec![]).await;
    // A bucket, a distribution that do not exist.
    let c = variant(
        "bucket.toml",
        text.replace(&s.bucket, "no-such-bucket-teal"),
    );
    refused("fleet.bucket", deploy(&c, "v2"), vec![]).await;
    let c = variant("dist.toml", text.replace(&s.distribution, "E0000NOSUCH000"));
    refused("router.distribution_id", deploy(&c, "v2"), vec![]).await;
    // A step above CloudFront's 15%: refused by `plan` too, with no call.
    let c = variant("step.toml", text.replace("percent = 10", "percent = 25"));
    refused("15%", deploy(&c, "v2"), vec![]).await;
    refused(
        "15%",
        vec!["plan".into(), "--config".into(), c.clone()],
        vec![],
    )
    .await;
    // An operator's shift past 15% likewise.
    let shift = |pct: &str| {
        ["shift", "--config", &s.config(), "--to", "green", pct]
            .map(String::from)
            .to_vec()
    };
    refused("at most 15%", shift("25%"), vec![]).await;
    // A distribution with HTTP/3.
    let sdk = sdk(&m).await;
    let h3 = distribution(&sdk, &s.endpoint, &s.bucket, HttpVersion::Http2and3).await;
    let c = variant("h3.toml", text.replace(&s.distribution, &h3));
    refused("HTTP/3", deploy(&c, "v2"), vec![]).await;
    // A distribution whose origin is another bucket than fleet.bucket.
    let elsewhere = distribution(&sdk, &s.endpoint, "another-front", HttpVersion::Http2).await;
    let c = variant("elsewhere.toml", text.replace(&s.distribution, &elsewhere));
    refused("not the bucket fleet.bucket", deploy(&c, "v2"), vec![]).await;

    assert!(
        s.writes()
            .iter()
            .all(|(m, p, _)| m == "POST" && p.ends_with("/distribution")),
        "only the fixture's own CreateDistribution calls: {:?}",
        s.writes()
    );
    assert!(
        keys(&s3(&sdk), &s.bucket, "site/v2/").await.is_empty(),
        "nothing uploaded"
    );
    assert!(
        keys(&s3(&sdk), &s.bucket, "site/.teal-slots/")
            .await
            .is_empty(),
        "no slot written"
    );
}

/// `from`'s files copied into `to` (one level of subdirectories).
fn copy_build(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        match path.is_dir() {
            true => copy_build(&path, &target),
            false => drop(std::fs::copy(&path, &target).unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deploys_of_one_site_at_one_instant_one_proceeds_the_other_is_refused() {
    let Some(m) = moto() else { return };
    let quick = "canary = { percent = 10, bake = \"1s\" }\nkeep_alive = \"0s\"\npoll = \"1s\"";
    let s = site(&m, HttpVersion::Http2, quick).await;
    let builds = tempfile::tempdir().unwrap();
    let config = s.dir.path().join("race.toml");
    let text = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(
        &config,
        text.replace(BUILDS, &builds.path().display().to_string()),
    )
    .unwrap();
    for trial in 0..3 {
        let revisions = [format!("r{trial}a"), format!("r{trial}b")];
        let cmds = revisions
            .iter()
            .map(|r| {
                copy_build(
                    &std::path::Path::new(BUILDS).join("v2"),
                    &builds.path().join(r),
                );
                let args = ["deploy", "--config", config.to_str().unwrap()];
                let mut cmd = teal(&m, &args);
                cmd.args(["--revision", r, "--output", "json"])
                    .env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
                cmd
            })
            .collect();
        let runs: [Run; 2] = finish(at_once(cmds).await).await.try_into().ok().unwrap();
        judge(trial, &runs);
        let won = runs.iter().position(|r| r.code == Some(0)).unwrap();
        let (winner, loser) = (&revisions[won], &revisions[1 - won]);
        assert_eq!(
            s.origin(&s.distribution),
            Some(format!("/site/{winner}")),
            "trial {trial}: the winner's revision is served"
        );
        let theirs = keys(&s3(&sdk(&m).await), &s.bucket, &format!("site/{loser}/")).await;
        assert!(
            theirs.is_empty(),
            "trial {trial}: nothing of the loser's uploaded: {theirs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_any_cloudfront_write_a_deployment_resumes_or_rolls_back_cleanly() {
    let Some(m) = moto() else { return };
    let quick = "canary = { percent = 10, bake = \"1s\" }\nkeep_alive = \"0s\"\npoll = \"1s\"";
    // How many CloudFront writes a whole deployment makes (the fixture's
    // own CreateDistribution is the first).
    let s = site(&m, HttpVersion::Http2, quick).await;
    run(s.deploy(&m, "v2"), &["deploy v2"], 0).await;
    let all = s.cloudfront.lock().unwrap().writes();
    assert!(all >= 5, "{:?}", s.writes());
    for n in 2..=all {
        let s = site(&m, HttpVersion::Http2, quick).await;
        s.cloudfront.lock().unwrap().hold_after_writes = Some(n);
        let mut child = s.deploy(&m, "v2").spawn().unwrap();
        until(&format!("write {n} answered"), || {
            s.cloudfront.lock().unwrap().holding()
        })
        .await;
        // Let it reach the held request, then SIGKILL: no cleanup.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        child.kill().await.unwrap();
        s.cloudfront.lock().unwrap().hold_after_writes = None;
        let cfg = s.config();
        let (verb, code, served) = match n % 2 {
            0 => (vec!["resume", "--config", &cfg, "--force"], 0, "/site/v2"),
            _ => (vec!["rollback", "--config", &cfg], 3, "/site/v1"),
        };
        let mut cmd = teal(&m, &verb);
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
        let (stdout, stderr) = run(cmd, &verb, code).await;
        let cf = s.cloudfront.lock().unwrap();
        eprintln!("kill point: after write {n} of {all}, then {}", verb[0]);
        let what = format!(
            "killed after write {n} of {all}, then {}: {} distributions, {} policies\n\
             {stdout}{stderr}",
            verb[0],
            cf.distributions.len(),
            cf.policies.len()
        );
        assert_eq!(
            cf.origin_path(&s.distribution).as_deref(),
            Some(served),
            "{what}"
        );
        assert!(
            cf.distributions.len() <= 2,
            "one staging copy at most: {what}"
        );
        assert!(cf.policies.len() <= 1, "one policy at most: {what}");
        assert!(
            cf.policy_of(&s.distribution)
                .is_none_or(|(enabled, _)| !enabled),
            "no request reaches a staging side after the end: {what}"
        );
    }
}

#[tokio::test]
async fn a_staging_distribution_teal_did_not_copy_is_warned_of_and_its_own_is_not() {
    let Some(m) = moto() else { return };
    let verify = |s: &Site| {
        let args = ["verify", "--config", &s.config(), "--revision", "v2"];
        let mut cmd = teal(&m, &args);
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint);
        cmd
    };
    const FOREIGN: &str = "which teal did not copy";
    // A staging copy and policy made by hand (or by Terraform), attached.
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    let (copy, id) = staging_made(&m, &s, "terraform-20261204", true, true).await;
    let id = id.unwrap();
    let (stdout, stderr) = run(verify(&s), &["verify"], 0).await;
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains(FOREIGN) && all.contains(&id) && all.contains(&copy),
        "{all}"
    );
    // teal's own copy, after a deployment made it: no warning.
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    run(s.deploy(&m, "v3"), &["deploy v3"], 0).await;
    let (stdout, stderr) = run(verify(&s), &["verify"], 0).await;
    assert!(s.staging().is_some() && !format!("{stdout}{stderr}").contains(FOREIGN));
}

/// A staging copy of the primary whose caller reference is `reference`
/// and, with `policy`, a policy sending it 10%, attached to the primary if
/// `attach`: what a teal killed while it set up the staging side leaves
/// (teal's reference, not attached), or a staging side set up by hand. The
/// copy's and the policy's ids.
async fn staging_made(
    m: &Moto,
    s: &Site,
    reference: &str,
    policy: bool,
    attach: bool,
) -> (String, Option<String>) {
    use aws_sdk_cloudfront::types::{
        ContinuousDeploymentPolicyConfig, ContinuousDeploymentPolicyType,
        ContinuousDeploymentSingleWeightConfig as SingleWeightConfig, StagingDistributionDnsNames,
        TrafficConfig,
    };
    let cf = cloudfront(&sdk(m).await, &s.endpoint);
    let primary = || async {
        cf.get_distribution_config()
            .id(&s.distribution)
            .send()
            .await
            .unwrap()
    };
    let copy = cf
        .copy_distribution()
        .primary_distribution_id(&s.distribution)
        .staging(true)
        .if_match(primary().await.e_tag().unwrap())
        .caller_reference(reference)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap();
    if !policy {
        return (copy.id, None);
    }
    let config = ContinuousDeploymentPolicyConfig::builder()
        .enabled(true)
        .staging_distribution_dns_names(
            StagingDistributionDnsNames::builder()
                .quantity(1)
                .items(copy.domain_name)
                .build()
                .unwrap(),
        )
        .traffic_config(
            TrafficConfig::builder()
                .r#type(ContinuousDeploymentPolicyType::SingleWeight)
                .single_weight_config(SingleWeightConfig::builder().weight(0.1).build().unwrap())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let id = cf
        .create_continuous_deployment_policy()
        .continuous_deployment_policy_config(config)
        .send()
        .await
        .unwrap()
        .continuous_deployment_policy
        .unwrap()
        .id;
    if attach {
        let primary = primary().await;
        let mut config = primary.distribution_config.clone().unwrap();
        config.continuous_deployment_policy_id = Some(id.clone());
        cf.update_distribution()
            .id(&s.distribution)
            .if_match(primary.e_tag().unwrap())
            .distribution_config(config)
            .send()
            .await
            .unwrap();
    }
    (copy.id, Some(id))
}

#[tokio::test]
async fn a_staging_copy_or_policy_a_killed_process_left_is_taken_up_not_made_again() {
    let Some(m) = moto() else { return };
    for policy in [false, true] {
        let s = site(&m, HttpVersion::Http2, CANARY).await;
        let teals = format!("teal-{}-1796350000000", s.distribution);
        staging_made(&m, &s, &teals, policy, false).await;
        let (stdout, stderr) = run(s.deploy(&m, "v2"), &["deploy v2"], 0).await;
        let cf = s.cloudfront.lock().unwrap();
        let made = format!(
            "{} distributions, {} policies:\n{stdout}{stderr}",
            cf.distributions.len(),
            cf.policies.len()
        );
        assert_eq!(
            cf.distributions.len(),
            2,
            "the primary and one copy: {made}"
        );
        assert_eq!(cf.policies.len(), 1, "one policy: {made}");
        assert_eq!(
            cf.origin_path(&s.distribution).as_deref(),
            Some("/site/v2"),
            "{made}"
        );
    }
}

/// Put, every second, `rates[0]`'s 5xx error rate for `ids[0]` (the primary)
/// and `rates[1]`'s for `ids[1]` (the staging copy), as CloudFront publishes
/// them: in us-east-1, dimensions `DistributionId` and `Region = Global`.
fn feed(c: &Clients, ids: [String; 2], rate: fn(usize, u64) -> f64) -> tokio::task::JoinHandle<()> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let cw = c.cw.clone();
    tokio::spawn(async move {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        for k in 0.. {
            tick.tick().await;
            let at = aws_smithy_types::DateTime::from_secs((start + k) as i64);
            let data = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    MetricDatum::builder()
                        .metric_name("5xxErrorRate")
                        .dimensions(
                            Dimension::builder()
                                .name("DistributionId")
                                .value(id)
                                .build(),
                        )
                        .dimensions(Dimension::builder().name("Region").value("Global").build())
                        .timestamp(at)
                        .value(rate(i, k))
                        .unit(StandardUnit::Percent)
                        .storage_resolution(1)
                        .build()
                })
                .collect();
            cw.put_metric_data()
                .namespace("AWS/CloudFront")
                .set_metric_data(Some(data))
                .send()
                .await
                .expect("PutMetricData");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_analysis_judges_the_staging_distribution_against_the_primary_in_us_east_1() {
    let Some(m) = moto() else { return };
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    // The deployment runs in eu-west-1 (its ledger table there); CloudFront's
    // metrics and the alarms on them are in us-east-1 only.
    let sdk = sdk(&m).await;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .region(aws_config::Region::new("eu-west-1"))
            .build(),
    );
    ensure_ledger_table(&ddb).await;
    let in_europe = |revision: &str, config: &str| {
        let mut cmd = teal(&m, &["deploy", "--config", config, "--revision", revision]);
        cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", &s.endpoint)
            .env("AWS_REGION", "eu-west-1");
        cmd
    };
    run(in_europe("v2", &s.config()), &["deploy v2"], 0).await;
    let staging = s.staging().expect("a staging distribution");

    let text = std::fs::read_to_string(s.config()).unwrap();
    let judged = s.dir.path().join("judged.toml");
    std::fs::write(
        &judged,
        text.replace(r#"bake = "3s""#, r#"bake = "8s""#)
            + r#"
[analysis]
period = "1s"
late = "2s"
min_points = 5

[[analysis.metric]]
name = "5xx-rate"
namespace = "AWS/CloudFront"
metric = "5xxErrorRate"
stat = "Average"
dimensions = { DistributionId = "{distribution}", Region = "Global" }
critical = true
"#,
    )
    .unwrap();
    // The primary (blue) 1-3%, the staging copy (green) 6-8%.
    let data = feed(
        &clients(&m).await,
        [s.distribution.clone(), staging.clone()],
        |i, k| (1 + k % 3) as f64 + 5.0 * i as f64,
    );
    let (stdout, stderr) = run(
        in_europe("v3", judged.to_str().unwrap()),
        &["deploy v3 judged"],
        3,
    )
    .await;
    data.abort();
    assert!(
        stdout.contains("analysis of step 1: FAIL"),
        "the staging distribution is judged worse than the primary:\n{stdout}\n{stderr}"
    );
    assert_eq!(s.origin(&s.distribution).as_deref(), Some("/site/v2"));
    assert!(!s.policy().unwrap().0, "the policy is disabled");
}

#[tokio::test]
async fn a_test_header_reaches_green_alone_before_any_production_share() {
    let Some(m) = moto() else { return };
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    let text = std::fs::read_to_string(s.config()).unwrap();
    let line = format!("distribution_id = \"{}\"\n", s.distribution);
    std::fs::write(
        s.config(),
        text.replace(&line, &format!("{line}test_header = \"aws-cf-cd-teal\"\n"))
            + "\n[hooks]\nafter_test_traffic = \"true\"\n",
    )
    .unwrap();
    let (stdout, stderr) = run(s.deploy(&m, "v2"), &["deploy v2"], 0).await;
    assert!(
        stdout.contains(
            "test listener now blue 0% / green 100% (read back); no production traffic moved"
        ),
        "{stdout}\n{stderr}"
    );
    let writes = s.cloudfront.lock().unwrap().policy_writes.clone();
    let header = writes
        .iter()
        .position(|c| c.contains("<Header>aws-cf-cd-teal</Header><Value>green</Value>"))
        .unwrap_or_else(|| panic!("a SingleHeader policy: {writes:?}"));
    let weight = writes
        .iter()
        .position(|c| c.contains("<Weight>0.1</Weight>"))
        .unwrap_or_else(|| panic!("a 10% SingleWeight policy: {writes:?}"));
    assert!(
        header < weight,
        "the header first, then the share: {writes:?}"
    );
    assert_eq!(s.origin(&s.distribution).as_deref(), Some("/site/v2"));

    // A header that is not CloudFront's is refused by plan.
    let bad = s.dir.path().join("bad.toml");
    let text = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(&bad, text.replace("aws-cf-cd-teal", "x-canary")).unwrap();
    let (stdout, stderr) = run_teal(&m, &["plan", "--config", bad.to_str().unwrap()], 2).await;
    assert!(
        format!("{stdout}{stderr}").contains("router.test_header"),
        "{stdout}{stderr}"
    );
}

/// The IAM action each call needs: CloudFront's, CloudWatch's and
/// DynamoDB's by the operation's name; S3's by the service authorization
/// reference's table (a listing is `s3:ListBucket`, a read `s3:GetObject`).
fn action(op: &str) -> Vec<String> {
    let s3 = |a: &[&str]| a.iter().map(|a| format!("s3:{a}")).collect();
    match op {
        "ListObjectsV2" | "HeadBucket" => s3(&["ListBucket"]),
        "HeadObject" | "GetObject" => s3(&["GetObject"]),
        "PutObject" => s3(&["PutObject"]),
        "DeleteObjects" => s3(&["DeleteObject"]),
        "CopyObject" => s3(&["GetObject", "PutObject"]),
        "DescribeAlarms" | "GetMetricData" => vec![format!("cloudwatch:{op}")],
        "GetItem" | "PutItem" | "DeleteItem" | "UpdateItem" => vec![format!("dynamodb:{op}")],
        _ => vec![format!("cloudfront:{op}")],
    }
}

/// Actions the policy allows that these flows do not call by name.
const IMPLIED: [(&str, &str); 1] = [(
    "cloudfront:CreateDistribution",
    "CopyDistribution \"requires the following IAM permissions: GetDistribution, \
     CreateDistribution, CopyDistribution\" (API reference, API_CopyDistribution)",
)];

#[tokio::test]
async fn the_example_iam_policy_allows_what_teal_calls_and_nothing_more() {
    let Some(m) = moto() else { return };
    let s = site(&m, HttpVersion::Http2, CANARY).await;
    let mut called = std::collections::BTreeSet::new();
    let mut json = |stdout: &str| {
        let line = json_lines(stdout)
            .into_iter()
            .find(|v| v["event"] == "api_calls")
            .unwrap_or_else(|| panic!("no api_calls line: {stdout}"));
        for key in ["calls", "rejected"] {
            for op in line[key].as_object().into_iter().flat_map(|o| o.keys()) {
                called.extend(action(op.split(':').next().unwrap()));
            }
        }
    };
    // A promotion, then a rollback on the staging alarm, then status.
    let mut cmd = s.deploy(&m, "v2");
    cmd.arg("--output").arg("json");
    json(&run(cmd, &["deploy v2"], 0).await.0);
    let staging = s.staging().unwrap();
    let mut cmd = s.deploy(&m, "v3");
    cmd.arg("--output").arg("json");
    let child = cmd.spawn().unwrap();
    until("v3 at 10%", || {
        s.policy() == Some((true, 0.1)) && s.origin(&staging).as_deref() == Some("/site/v3")
    })
    .await;
    set_alarm(&clients(&m).await, &s.alarm, StateValue::Alarm).await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    json(&text(&out).0);
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/static-cloudfront/iam-policy.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let allowed: std::collections::BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| match &st["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            v => v
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        })
        .collect();
    let missing: Vec<&String> = called.iter().filter(|c| !allowed.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "the policy lacks what teal calls: {missing:?}"
    );
    let implied: Vec<&str> = IMPLIED.iter().map(|(a, _)| *a).collect();
    let unused: Vec<&String> = allowed
        .iter()
        .filter(|a| !called.contains(*a) && !implied.contains(&a.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "the policy allows what teal never calls: {unused:?}"
    );
}
