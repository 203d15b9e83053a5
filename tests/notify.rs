//! Webhook notifications end to end, on the simulated provider: loopback
//! HTTP servers in the test receive the generic and the Slack bodies; one
//! that answers 500 and one that never answers are each reported once, as a
//! warning, change nothing in the deployment's timeline, and keep no other
//! channel from its messages; no webhook URL appears in any output.

#[path = "support/webhook.rs"]
mod webhook;

use serde_json::Value;
use std::process::Output;
use webhook::{server, Answer};

/// A simulated canary whose first step waits for approval until its timeout
/// promotes it (no second process can reach a simulated deployment).
fn config(dir: &std::path::Path, webhooks: &str) -> std::path::PathBuf {
    let path = dir.join("teal.toml");
    std::fs::write(
        &path,
        format!(
            r#"[service]
name = "web"

[fleet]
kind = "sim"
instances = 2
healthy_after = "20s"
live_revision = "v1"

[router]
kind = "sim"

[gates]
alarms = ["web-5xx"]

[strategy]
steps = [{{ weight = 10, bake = "1m", approve = {{ timeout = "5m", on_timeout = "promote" }} }}, {{ weight = 100, bake = "1m" }}]
keep_alive = "1m"

{webhooks}
"#
        ),
    )
    .unwrap();
    path
}

fn deploy(cfg: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_teal"))
        .args([
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--revision",
            "v2",
        ])
        .args(["--output", "json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The deployment's steps: its phases, weights, approvals and end (what
/// the simulated latencies cannot reorder).
fn kinds(events: &[Value]) -> Vec<String> {
    let steps = [
        "started",
        "phase",
        "weights_set",
        "awaiting_approval",
        "approved",
        "finished",
    ];
    events
        .iter()
        .filter(|e| steps.iter().any(|k| e["event"] == *k))
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

/// What the process printed, once checked to hold no webhook URL (each
/// test server's path holds `SECRET`).
fn no_secret_in(out: &Output) -> String {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !printed.contains("SECRET"),
        "a webhook URL in the output:\n{printed}"
    );
    printed
}

const MILESTONES: [&str; 6] = [
    "started",
    "step",
    "awaiting_approval",
    "approved",
    "step",
    "succeeded",
];

#[test]
fn webhooks_get_the_generic_and_the_slack_bodies_and_their_urls_stay_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (json_url, json_got) = server(Answer::Ok, "T000/SECRET-JSON");
    let (slack_url, slack_got) = server(Answer::Ok, "T000/SECRET-SLACK");
    let cfg = config(
        dir.path(),
        "[[notify.webhook]]\nurl_env = \"HOOK_JSON\"\n\n[[notify.webhook]]\nurl_env = \"HOOK_SLACK\"\nformat = \"slack\"\n",
    );
    let out = deploy(
        &cfg,
        &[("HOOK_JSON", &json_url), ("HOOK_SLACK", &slack_url)],
    );

    let json = json_got.lock().unwrap().clone();
    let kinds: Vec<&str> = json.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, MILESTONES);
    assert_eq!(json[2]["step"], 1);
    assert_eq!(json[2]["weights"]["green"], 10);
    assert_eq!(json[3]["by"], "on_timeout = \"promote\"");
    assert_eq!(
        json[0]["event"]["event"], "started",
        "the event itself rides along"
    );

    let slack = slack_got.lock().unwrap().clone();
    assert_eq!(slack.len(), MILESTONES.len());
    let wait = &slack[2];
    assert!(
        wait["text"]
            .as_str()
            .unwrap()
            .contains("waits for approval"),
        "{wait}"
    );
    let blocks = wait["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let all = wait.to_string();
    for field in [
        "*Service*\\nweb",
        "*Revision*\\nv2 (blue: v1)",
        "*Step*\\n1/2",
        "*Weights*\\nblue 90% · green 10%",
    ] {
        assert!(all.contains(field), "{field} in {all}");
    }
    let approve = format!("teal approve --config {}", cfg.display());
    assert!(all.contains(&approve), "{all}");

    let printed = no_secret_in(&out);
    assert!(!printed.contains("\"warning\""), "{printed}");
}

#[test]
fn a_failing_or_hanging_webhook_delays_nothing_and_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let (good_url, good_got) = server(Answer::Ok, "SECRET-GOOD");
    let (bad_url, bad_got) = server(Answer::Status500, "SECRET-500");
    let (hang_url, hang_got) = server(Answer::Hang, "SECRET-HANG");
    let good = "[[notify.webhook]]\nurl_env = \"HOOK_GOOD\"\n";
    let alone = deploy(&config(dir.path(), good), &[("HOOK_GOOD", &good_url)]);
    let baseline = good_got.lock().unwrap().len();
    assert_eq!(baseline, MILESTONES.len());

    let cfg = config(
        dir.path(),
        &format!(
            "[[notify.webhook]]\nurl_env = \"HOOK_500\"\n\n[[notify.webhook]]\nurl_env = \"HOOK_HANG\"\n\n{good}"
        ),
    );
    let out = deploy(
        &cfg,
        &[
            ("HOOK_GOOD", &good_url),
            ("HOOK_500", &bad_url),
            ("HOOK_HANG", &hang_url),
        ],
    );

    let events = lines(&out);
    // The same deployment as with the good webhook alone, and over before
    // the hanging webhook was given up: nothing waited for it.
    assert_eq!(kinds(&events), kinds(&lines(&alone)));
    let at = |what: &dyn Fn(&Value) -> bool| events.iter().position(what).unwrap();
    let finished = at(&|e| e["event"] == "finished");
    let hang_warned =
        at(&|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("$HOOK_HANG"));
    assert!(finished < hang_warned, "{events:#?}");
    let warnings: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("$HOOK_500") && w.contains("HTTP 500")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("$HOOK_HANG")),
        "{warnings:#?}"
    );
    // The good channel got every milestone, the failing one was tried.
    assert_eq!(good_got.lock().unwrap().len(), 2 * MILESTONES.len());
    assert!(!bad_got.lock().unwrap().is_empty());
    assert!(!hang_got.lock().unwrap().is_empty());
    no_secret_in(&out);
}

#[test]
fn bad_notify_input_is_exit_2_located_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = server(Answer::Ok, "SECRET-UNUSED");
    let cases = [
        ("[[notify.webhook]]\nurl_env = \"TEAL_TEST_NOT_SET\"\n", "notify.webhook[0].url_env: the environment variable TEAL_TEST_NOT_SET"),
        ("[[notify.webhook]]\nurl = \"ftp://example.com/hook\"\n", "notify.webhook[0].url: the webhook URL in notify.webhook[0].url is not an http(s) URL"),
        ("[[notify.sns]]\ntopic_arn = \"arn:aws:sns:eu-west-1:42:deploys\"\n", "notify.sns[0].topic_arn: expected a topic ARN"),
        ("[[notify.eventbridge]]\nbus = \"arn:aws:events:eu-west-1:123456789012:rule/deploys\"\n", "notify.eventbridge[0].bus: expected an event bus name"),
        ("[notify]\nevents = [\"deployed\"]\n\n[[notify.webhook]]\nurl_env = \"HOOK\"\n", "notify.events[0]: unknown event kind \"deployed\""),
    ];
    for (notify, want) in cases {
        let cfg = config(dir.path(), notify);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_teal"))
            .args([
                "deploy",
                "--config",
                cfg.to_str().unwrap(),
                "--revision",
                "v2",
            ])
            .env("HOOK", &url)
            .env_remove("TEAL_TEST_NOT_SET")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{notify}\n{stderr}");
        let line = 1 + std::fs::read_to_string(&cfg)
            .unwrap()
            .lines()
            .position(|l| notify.lines().nth(1).is_some_and(|n| l == n))
            .unwrap();
        let located = format!("teal.toml:{line}:");
        assert!(
            stderr.contains(&located) && stderr.contains(want),
            "{notify}\nwant {located} {want}\n{stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "nothing started"
        );
    }
    assert!(got.lock().unwrap().is_empty(), "nothing was sent");
}
