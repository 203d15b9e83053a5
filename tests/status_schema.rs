//! `docs/STATUS.md` documents `teal status --output json`: its field table
//! and its example must agree with what `StatusReport` serialises.

use std::collections::BTreeSet;
use teal::engine::{Hold, Lock};
use teal::model::{FleetStatus, GateReading, GateState, Weights};
use teal::status::{StatusReport, STATUS_SCHEMA};

const DOC: &str = include_str!("../docs/STATUS.md");

/// The field names in the first column of the doc's first field table.
fn documented_fields() -> BTreeSet<String> {
    DOC.lines()
        .skip_while(|l| !l.starts_with("| field |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or_default();
            first
                .split(',')
                .map(|f| f.trim().trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn sample() -> StatusReport {
    let fleet = FleetStatus {
        exists: true,
        revision: Some("v2".into()),
        desired: 2,
        healthy: 2,
        name: Some("web-b".into()),
    };
    StatusReport {
        schema: STATUS_SCHEMA,
        at: 1,
        deployment: "d-1".into(),
        service: "web".into(),
        revision: "v2".into(),
        blue_revision: Some("v1".into()),
        strategy: "canary-10-5m".into(),
        phase: "shifting".into(),
        step: Some((1, 2)),
        hold: Some(Hold::Manual {
            green: 25,
            ignore_gates: false,
        }),
        weights_set: Some(Weights::to_green(25)),
        weights_actual: Weights::to_green(25),
        green: fleet.clone(),
        blue: fleet,
        gates: vec![GateReading {
            name: "web-5xx".into(),
            state: GateState::Ok,
            reason: "fine".into(),
            since: 0,
        }],
        next: "held".into(),
        next_at: None,
        lock: Some(Lock {
            owner: "me@here:1".into(),
            expires_at: 2,
        }),
        outcome: None,
        started_at: 0,
        build: Some(teal::pipeline::Build {
            id: "proj:1".into(),
            initiator: Some("codepipeline/web".into()),
        }),
        rollout: None,
        judgment: None,
        approvals: vec![],
    }
}

#[test]
fn the_documented_fields_are_the_serialised_ones() {
    let v = serde_json::to_value(sample()).unwrap();
    assert_eq!(documented_fields(), keys(&v));
    assert_eq!(v["schema"], 1, "docs/STATUS.md documents schema 1");
}

#[test]
fn the_documented_example_has_the_serialised_shape() {
    let example = DOC
        .lines()
        .skip_while(|l| !l.starts_with("Example"))
        .find(|l| l.starts_with('{'))
        .expect("an example document");
    let doc: serde_json::Value = serde_json::from_str(example).expect("the example parses");
    let ours = serde_json::to_value(sample()).unwrap();
    assert_eq!(keys(&doc), keys(&ours));
    for nested in ["hold", "weights_set", "green", "lock", "build"] {
        assert_eq!(keys(&doc[nested]), keys(&ours[nested]), "{nested}");
    }
    assert_eq!(keys(&doc["gates"][0]), keys(&ours["gates"][0]));
}
