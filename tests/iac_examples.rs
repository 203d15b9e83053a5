//! The infrastructure-as-code examples keep IaC and teal from fighting:
//! every attribute teal changes is ignored by the Terraform that declares
//! it (python-hcl2 parses `examples/terraform/`, this test checks), and a
//! copy with one ignore removed fails the same check. CI also runs
//! `terraform fmt -check` and `cfn-lint` on the examples (`.ci/run`).
//!
//! Needs the Python with python-hcl2 that `tests/support/moto-up.sh`
//! installs (`TEAL_MOTO_PYTHON`); without it the test is skipped, except in
//! CI, where it fails.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// What teal changes on each resource type, and so what an `ignore_changes`
/// on it must list (see README, "With Terraform, CloudFormation or CDK").
const TEAL_CHANGES: &[(&str, &[&str])] = &[
    ("aws_lb_listener", &["default_action"]),
    ("aws_lb_listener_rule", &["action"]),
    ("aws_ecs_service", &["task_definition", "desired_count"]),
    (
        "aws_appautoscaling_target",
        &["min_capacity", "max_capacity"],
    ),
    (
        "aws_autoscaling_group",
        &[
            "launch_template",
            "min_size",
            "max_size",
            "desired_capacity",
        ],
    ),
    ("aws_route53_record", &["weighted_routing_policy"]),
];

/// The Terraform of `dir` as JSON, by python-hcl2; `None` when no Python
/// with it is configured (outside CI).
fn parse(dir: &Path) -> Option<BTreeMap<String, Value>> {
    let python = match std::env::var("TEAL_MOTO_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI without TEAL_MOTO_PYTHON: .ci/run installs python-hcl2 with moto")
        }
        Err(_) => return None,
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/hcl2json.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "hcl2json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// python-hcl2 (8.x) keeps the quotes of block labels and string values.
fn label(s: &str) -> &str {
    s.trim_matches('"')
}

/// Every problem: a resource teal changes without the ignore it needs, or
/// a provider that does not ignore teal's tags.
fn problems(files: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut ignores_tags = false;
    let mut seen = 0;
    for (file, doc) in files {
        for provider in doc["provider"].as_array().into_iter().flatten() {
            let Some(aws) = provider.get("\"aws\"").or(provider.get("aws")) else {
                continue;
            };
            let prefixes = &aws["ignore_tags"][0]["key_prefixes"];
            ignores_tags |= prefixes
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p.as_str().map(label) == Some("teal:")));
        }
        for block in doc["resource"].as_array().into_iter().flatten() {
            for (kind, named) in block.as_object().into_iter().flatten() {
                let Some((_, fields)) = TEAL_CHANGES.iter().find(|(k, _)| *k == label(kind)) else {
                    continue;
                };
                for (name, body) in named.as_object().into_iter().flatten() {
                    if name == "__is_block__" {
                        continue;
                    }
                    seen += 1;
                    let ignored: Vec<&str> = body["lifecycle"][0]["ignore_changes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(label)
                        .collect();
                    for f in *fields {
                        if !ignored.contains(f) {
                            out.push(format!(
                                "{file}: {}.{}: teal changes {f}, which lifecycle.ignore_changes does not list",
                                label(kind),
                                label(name)
                            ));
                        }
                    }
                }
            }
        }
    }
    if !ignores_tags {
        out.push("provider \"aws\": ignore_tags { key_prefixes = [\"teal:\"] } is missing".into());
    }
    if seen == 0 {
        out.push("no resource that teal changes: nothing was checked".into());
    }
    out
}

#[test]
fn the_terraform_example_ignores_everything_teal_changes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/terraform");
    let Some(files) = parse(&dir) else { return };
    assert_eq!(problems(&files), Vec::<String>::new());
    // What it declares: the listener, both slot services, their targets.
    let text: String = files.values().map(Value::to_string).collect();
    for kind in [
        "aws_lb_listener",
        "aws_ecs_service",
        "aws_appautoscaling_target",
    ] {
        assert!(text.contains(kind), "{kind} is declared");
    }
}

#[test]
fn a_listener_without_the_ignore_fails_the_check() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/terraform");
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "main.tf" {
            let ignore = "ignore_changes = [default_action]";
            assert!(text.contains(ignore));
            text = text.replace(ignore, "ignore_changes = []");
        }
        std::fs::write(copy.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let Some(files) = parse(copy.path()) else {
        return;
    };
    assert_eq!(
        problems(&files),
        vec![
            "main.tf: aws_lb_listener.http: teal changes default_action, which lifecycle.ignore_changes does not list"
                .to_string()
        ]
    );
}
