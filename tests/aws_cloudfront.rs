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

/// A distribution through the stand-in serving `s3://bucket/site/v1`.
async fn distribution(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    bucket: &str,
    http: HttpVersion,
) -> String {
    let cf = aws_sdk_cloudfront::Client::from_conf(
        aws_sdk_cloudfront::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build(),
    );
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
    assert!(slots.iter().any(|k| k.ends_with("/v2")), "{slots:?}");
    assert!(
        !slots.iter().any(|k| k.ends_with("/v1")),
        "blue's slot was retired: {slots:?}"
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
    // A distribution with HTTP/3.
    let sdk = sdk(&m).await;
    let h3 = distribution(&sdk, &s.endpoint, &s.bucket, HttpVersion::Http2and3).await;
    let c = variant("h3.toml", text.replace(&s.distribution, &h3));
    refused("HTTP/3", deploy(&c, "v2"), vec![]).await;

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
