//! `docs/EVENTS.md` documents every JSON line teal writes with `--output
//! json`. These tests fail when the tables and the code disagree, and check
//! the lines of real runs (on the simulated provider) against the tables.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use teal::cli::render::{self, CliLine, ReconcileState, RequestState, EVENTS_SCHEMA};
use teal::engine::{Outcome, Reason};
use teal::events::{Event, EventKind};
use teal::model::{GateState, Slot, Weights};

const DOC: &str = include_str!("../docs/EVENTS.md");

/// The documented fields of each event kind, per table: the backticked
/// names at the start of the second column's comma-separated items.
fn documented(section: &str) -> BTreeMap<String, BTreeSet<String>> {
    let body = DOC
        .split("\n## ")
        .find(|s| s.starts_with(section))
        .unwrap_or_else(|| panic!("docs/EVENTS.md has a section {section:?}"));
    body.lines()
        // Rows, not the header (`event` | fields).
        .filter(|l| l.starts_with("| `") && !l.starts_with("| `event`"))
        .map(|row| {
            let cols: Vec<&str> = row.split(" | ").collect();
            let name = cols[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            // Top-level commas only: parentheses hold explanations.
            let mut fields = BTreeSet::new();
            let mut depth = 0;
            let mut item = String::new();
            for c in cols[1].chars().chain([',']) {
                match c {
                    '(' | '{' | '[' => depth += 1,
                    ')' | '}' | ']' => depth -= 1,
                    ',' if depth == 0 => {
                        if let Some(f) = item
                            .trim()
                            .strip_prefix('`')
                            .and_then(|r| r.split('`').next())
                        {
                            fields.insert(f.to_string());
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            (name, fields)
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn json(line: &impl serde::Serialize) -> Value {
    let mut out = Vec::new();
    render::write_json(&mut out, line).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    serde_json::from_str(&text).unwrap()
}

/// One of each deployment event. The match makes this list fail to compile
/// when a kind is added, so that the docs cannot miss it.
fn every_event_kind() -> Vec<EventKind> {
    let w = Weights::to_green(10);
    let kinds = vec![
        EventKind::Started {
            service: "web".into(),
            revision: "v2".into(),
            blue_revision: Some("v1".into()),
            green_slot: Slot::B,
            strategy: "canary-10-5m".into(),
            steps: vec![10, 100],
            rolling: false,
        },
        EventKind::Resumed {
            service: "web".into(),
            revision: "v2".into(),
            blue_revision: Some("v1".into()),
            steps: vec![10, 100],
            phase: "shifting".into(),
            previous_owner: None,
        },
        EventKind::Phase {
            from: "provisioning".into(),
            to: "shifting".into(),
            detail: "step 1/2".into(),
        },
        EventKind::Provisioning { desired: 2 },
        EventKind::GreenHealth {
            healthy: 1,
            desired: 2,
        },
        EventKind::WeightsSet { weights: w },
        EventKind::WeightsMismatch {
            set: w,
            actual: Weights::to_green(0),
            attempt: 1,
        },
        EventKind::Removing {
            role: "blue".into(),
            slot: Slot::A,
        },
        EventKind::RolloutState {
            state: teal::model::RolloutState::InProgress {
                percent: Some(50),
                detail: "ECS deployment ecs-svc/123 in progress.".into(),
            },
        },
        EventKind::RolloutAction {
            action: "revert".into(),
        },
        EventKind::TestWeightsSet {
            weights: Weights::ALL_GREEN,
        },
        EventKind::HookStarted {
            hook: "before-traffic".into(),
        },
        EventKind::HookFinished {
            hook: "after-step 2".into(),
            passed: false,
            detail: "`./smoke.sh` exited with 1: GET / answered 503".into(),
            took_ms: 1_250,
        },
        EventKind::Gate {
            gate: "web-5xx".into(),
            state: GateState::Alarm,
            reason: "Threshold Crossed".into(),
        },
        EventKind::Retrying {
            op: "router.set_weights".into(),
            attempt: 1,
            error: "throttled".into(),
            backoff_ms: 200,
        },
        EventKind::Warning {
            message: "careful".into(),
        },
        EventKind::Judgment {
            step: 1,
            outcome: teal::analysis::StepOutcome::Fail,
            score: Some(0.0),
            summary: "score 0; 5xx: ...".into(),
            metrics: vec![teal::analysis::assess::MetricLine {
                name: "alb-5xx-share".into(),
                verdict: "fail".into(),
                green: 0.3,
                green_points: 20,
                blue: 0.01,
                blue_points: 20,
                p: Some(0.0001),
                critical: true,
                text: "alb-5xx-share: ...".into(),
            }],
        },
        EventKind::AwaitingApproval {
            step: 1,
            weight: 10,
            since: 3,
            until: Some(4),
            on_timeout: Some("rollback".into()),
        },
        EventKind::Approved {
            step: 1,
            by: "me@here:1".into(),
        },
        EventKind::Command {
            command: "pause".into(),
            by: "me@here:1".into(),
        },
        EventKind::Interrupted {
            signal: "SIGTERM".into(),
        },
        EventKind::Finished {
            outcome: Outcome::RolledBack {
                reason: Reason::Operator {
                    command: "rollback".into(),
                    at: 5,
                },
            },
            calls: BTreeMap::from([("router.set_weights".to_string(), 2)]),
        },
    ];
    for k in &kinds {
        match k {
            EventKind::Started { .. }
            | EventKind::Resumed { .. }
            | EventKind::Phase { .. }
            | EventKind::Provisioning { .. }
            | EventKind::GreenHealth { .. }
            | EventKind::WeightsSet { .. }
            | EventKind::WeightsMismatch { .. }
            | EventKind::Removing { .. }
            | EventKind::HookStarted { .. }
            | EventKind::TestWeightsSet { .. }
            | EventKind::RolloutState { .. }
            | EventKind::RolloutAction { .. }
            | EventKind::HookFinished { .. }
            | EventKind::Gate { .. }
            | EventKind::Judgment { .. }
            | EventKind::Retrying { .. }
            | EventKind::Warning { .. }
            | EventKind::AwaitingApproval { .. }
            | EventKind::Approved { .. }
            | EventKind::Command { .. }
            | EventKind::Interrupted { .. }
            | EventKind::Finished { .. } => {}
        }
    }
    kinds
}

fn every_cli_line() -> Vec<CliLine> {
    let lines = vec![
        CliLine::ApiCalls {
            total: 3,
            observations: Some(2),
            calls: BTreeMap::from([("DescribeAlarms".to_string(), 3)]),
            rejected: BTreeMap::from([("PutItem:ConditionalCheckFailedException".to_string(), 1)]),
            throttled: 0,
            paced: 0,
            paced_ms: 0,
        },
        CliLine::Error {
            exit: 2,
            message: "bad".into(),
        },
        CliLine::Request {
            state: RequestState::Queued,
            command: "pause".into(),
            deployment: None,
            request: Some("r-1".into()),
            driver: Some("ci".into()),
        },
        CliLine::Detached {
            deployment: "d-1".into(),
            phase: "shifting".into(),
        },
        CliLine::Reconcile {
            state: ReconcileState::Skipped,
            deployment: Some("d-1".into()),
            driver: Some("ci".into()),
        },
        CliLine::Verified {
            service: "web".into(),
            revision: "v2".into(),
            blue: "v1 in slot a".into(),
            warnings: vec![],
        },
    ];
    for l in &lines {
        match l {
            CliLine::ApiCalls { .. }
            | CliLine::Error { .. }
            | CliLine::Request { .. }
            | CliLine::Detached { .. }
            | CliLine::Reconcile { .. }
            | CliLine::Verified { .. } => {}
        }
    }
    lines
}

const COMMON_EVENT: [&str; 4] = ["schema", "event", "at", "deployment"];
const COMMON_LINE: [&str; 2] = ["schema", "event"];

fn expected(table: &BTreeSet<String>, common: &[&str]) -> BTreeSet<String> {
    table
        .iter()
        .cloned()
        .chain(common.iter().map(|s| s.to_string()))
        .collect()
}

/// Each of `lines` has exactly its documented fields (plus `common`), and
/// together they cover the section's table: nothing undocumented, nothing
/// documented that the code lacks.
fn assert_documented(section: &str, lines: Vec<Value>, common: &[&str]) {
    let docs = documented(section);
    let mut seen = BTreeSet::new();
    for v in lines {
        assert_eq!(v["schema"], EVENTS_SCHEMA);
        let name = v["event"].as_str().unwrap().to_string();
        let table = docs
            .get(&name)
            .unwrap_or_else(|| panic!("{name:?} is not in docs/EVENTS.md ({section})"));
        assert_eq!(keys(&v), expected(table, common), "{name}");
        seen.insert(name);
    }
    let documented: BTreeSet<String> = docs.keys().cloned().collect();
    assert_eq!(
        seen, documented,
        "docs/EVENTS.md ({section}) and the code differ"
    );
}

#[test]
fn every_deployment_event_is_documented_with_its_fields() {
    let lines = every_event_kind()
        .into_iter()
        .map(|kind| {
            json(&Event {
                at: 1,
                deployment: "d-1".into(),
                kind,
            })
        })
        .collect();
    assert_documented("Deployment events", lines, &COMMON_EVENT);
}

#[test]
fn every_command_line_is_documented_with_its_fields() {
    let lines = every_cli_line().iter().map(json).collect();
    assert_documented("Command lines", lines, &COMMON_LINE);
}

/// Every line of a run parses, carries the schema, and has exactly the
/// documented fields of its kind.
fn check_run(args: &[&str], code: i32) -> Vec<Value> {
    let out = Command::cargo_bin("teal")
        .unwrap()
        .args(args)
        .args(["--output", "json"])
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
        .env_remove("TEAL_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    let events = documented("Deployment events");
    let lines = documented("Command lines");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.is_empty());
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert_eq!(v["schema"], EVENTS_SCHEMA, "{l}");
            let name = v["event"].as_str().expect("an event kind");
            let want = match (events.get(name), lines.get(name)) {
                (Some(t), _) => expected(t, &COMMON_EVENT),
                (None, Some(t)) => expected(t, &COMMON_LINE),
                (None, None) => panic!("undocumented event {name:?}: {l}"),
            };
            assert_eq!(keys(&v), want, "{l}");
            v
        })
        .collect()
}

#[test]
fn real_runs_write_only_documented_lines() {
    let ok = check_run(&["deploy", "--config", "examples/sim/teal.toml"], 0);
    assert_eq!(ok.last().unwrap()["outcome"]["outcome"], "succeeded");
    let gate = std::fs::read_to_string("examples/sim/teal.toml").unwrap();
    let alarm = gate
        .lines()
        .find_map(|l| l.strip_prefix("alarms = [\""))
        .and_then(|r| r.split('"').next())
        .expect("the sim example names an alarm");
    let rolled_back = check_run(
        &[
            "deploy",
            "--config",
            "examples/sim/teal.toml",
            "--sim-fail-gate",
            &format!("{alarm}@1m"),
        ],
        3,
    );
    assert!(rolled_back.iter().any(|e| e["event"] == "gate"));
    let bad = check_run(&["deploy", "--config", "/nonexistent/teal.toml"], 2);
    assert_eq!(bad.last().unwrap()["event"], "error");
    assert_eq!(bad.last().unwrap()["exit"], 2);
}

/// `teal release deploy --output json`: the release lines have exactly their
/// documented fields, every kind appears, and the services' events are the
/// deployment events with `service`, `release` and `run` added.
#[test]
fn every_release_line_is_documented_with_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["release.toml", "api.toml", "worker.toml", "web.toml"] {
        std::fs::copy(format!("examples/release-sim/{f}"), dir.path().join(f)).unwrap();
    }
    let out = Command::cargo_bin("teal")
        .unwrap()
        .args(["release", "deploy"])
        .arg(dir.path().join("release.toml"))
        .args(["--revision", "v2", "--output", "json"])
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let events = documented("Deployment events");
    let mut release_lines = vec![];
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let name = v["event"].as_str().expect("an event kind").to_string();
        match events.get(&name) {
            Some(t) => {
                let mut common = COMMON_EVENT.to_vec();
                common.extend(["service", "release", "run"]);
                assert_eq!(keys(&v), expected(t, &common), "{l}");
            }
            None => release_lines.push(v),
        }
    }
    assert_documented(
        "Release lines",
        release_lines,
        &["schema", "event", "release", "run"],
    );
}
