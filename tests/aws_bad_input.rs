//! Invariant 8 against moto, table-driven: every input `teal deploy` reads
//! before its first write, each made bad in turn. Each case must be exit 2
//! from `verify` and from `deploy`, naming the flag or field and the
//! resource, with no call that AWS carried out changing anything, and
//! nothing written: no record in the ledger, no service or group made.

#[path = "support/aws.rs"]
mod support;

use std::path::Path;
use support::*;

/// One bad input: how the config or the flags are made bad, and what the
/// refusal must say.
struct Case {
    what: &'static str,
    /// The config text, edited.
    edit: fn(&str, &Names) -> String,
    /// The green flags (replacing the good ones).
    green: Vec<String>,
    /// Every one of these is in the refusal.
    says: Vec<&'static str>,
}

/// What a case's edit may refer to.
struct Names {
    name: String,
    zone: String,
}

fn same(text: &str, _: &Names) -> String {
    text.to_string()
}

fn flags(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// No summary (refused before any AWS call) or a summary of reads only.
fn changes_made(stdout: &str) -> Vec<String> {
    match stdout.lines().any(|l| l.starts_with("AWS API calls:")) {
        false => vec![],
        true => mutating_calls(stdout),
    }
}

/// Run `verify` and `deploy` with `green` flags; both must refuse with exit
/// 2 and say every one of `says`; neither may change anything.
async fn refused(m: &Moto, cfg: &Path, case: &Case) {
    for command in ["verify", "deploy"] {
        let mut args = vec![command, "--config", cfg.to_str().unwrap()];
        args.extend(case.green.iter().map(String::as_str));
        let out = teal(m, &args).output().await.unwrap();
        let (stdout, stderr) = text(&out);
        let all = format!("{stdout}\n{stderr}");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: teal {command} must refuse as bad input:\n{all}",
            case.what
        );
        for s in &case.says {
            assert!(
                all.contains(s),
                "{}: {command} does not say {s:?}:\n{all}",
                case.what
            );
        }
        assert_eq!(
            changes_made(&stdout),
            Vec::<String>::new(),
            "{}: {command} changed things:\n{all}",
            case.what
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_bad_input_is_refused_before_any_write() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let good = std::fs::read_to_string(&cfg).unwrap();
    let names = Names {
        name: f.name.clone(),
        zone: String::new(),
    };
    let image = ["--image", "registry.example/app:2"];
    // A table whose key is not teal's `id` (someone else's table, say).
    ensure_table(&c.ddb, "teal-wrong-key", "pk").await;
    let cases = vec![
        Case {
            what: "an empty image",
            edit: same,
            green: flags(&["--image", ""]),
            says: vec!["--image", "must not be empty"],
        },
        Case {
            what: "an image with a space",
            edit: same,
            green: flags(&["--image", "registry.example/app :2"]),
            says: vec!["--image", "spaces"],
        },
        Case {
            what: "a task definition not registered",
            edit: same,
            green: flags(&["--task-definition", "web:99"]),
            says: vec!["--task-definition web:99", "no such task definition"],
        },
        Case {
            what: "a cluster that does not exist",
            edit: |t, _| t.replace("cluster = \"", "cluster = \"nope-"),
            green: flags(&image),
            says: vec!["fleet.cluster", "nope-"],
        },
        Case {
            what: "a service that does not exist",
            edit: |t, n| t.replace(&format!("service = \"{}\"", n.name), "service = \"ghost\""),
            green: flags(&image),
            says: vec!["fleet.service", "ghost"],
        },
        Case {
            what: "a container blue's task definition lacks",
            edit: |t, _| t.replace("container = \"app\"", "container = \"sidecar\""),
            green: flags(&image),
            says: vec!["no container sidecar"],
        },
        Case {
            what: "an AMI for an ECS fleet",
            edit: same,
            green: flags(&["--ami", "ami-12c6146b"]),
            says: vec!["--ami is for Auto Scaling fleets", "fleet.kind is \"ecs\""],
        },
        Case {
            what: "a launch template version for an ECS fleet",
            edit: same,
            green: flags(&["--launch-template-version", "2"]),
            says: vec!["--launch-template-version is for Auto Scaling fleets"],
        },
        Case {
            what: "a listener that does not exist",
            edit: |t, _| {
                let start = t.find("listener/app/").unwrap();
                let end = start + t[start..].find('"').unwrap();
                let arn = &t[start..end];
                let gone = format!("{}0000000000000000", &arn[..arn.len() - 16]);
                t.replace(arn, &gone)
            },
            green: flags(&image),
            says: vec!["router.listener_arn"],
        },
        Case {
            what: "a ledger table that does not exist",
            edit: |t, _| format!("{t}\n[ledger]\ntable = \"no-such-table\"\n"),
            green: flags(&image),
            says: vec!["ledger.table", "no-such-table", "create-table"],
        },
        Case {
            what: "a ledger table keyed otherwise",
            edit: |t, _| format!("{t}\n[ledger]\ntable = \"teal-wrong-key\"\n"),
            green: flags(&image),
            says: vec![
                "ledger.table",
                "teal-wrong-key",
                "one string attribute `id`",
            ],
        },
        Case {
            what: "an empty revision label",
            edit: same,
            green: flags(&["--image", "registry.example/app:2", "--revision", ""]),
            says: vec!["--revision", "must not be empty"],
        },
    ];
    for case in &cases {
        std::fs::write(&cfg, (case.edit)(&good, &names)).unwrap();
        refused(&m, &cfg, case).await;
        assert!(
            ledger_record(&c, &f.listener).await.is_none(),
            "{}: a record was written",
            case.what
        );
        assert_eq!(
            active_services(&c, &f).await,
            vec![f.name.clone()],
            "{}: a service was made",
            case.what
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asg_bad_input_is_refused_before_any_write() {
    let Some(m) = moto() else { return };
    let f = asg_fixture(&m).await;
    let (_dir, cfg) = asg_config(&f, FAST_CANARY);
    let good = std::fs::read_to_string(&cfg).unwrap();
    let names = Names {
        name: f.name.clone(),
        zone: f.zone.clone(),
    };
    let ami = ["--ami", AMI_GREEN];
    let cases = vec![
        Case {
            what: "a launch template version that does not exist",
            edit: same,
            green: flags(&["--launch-template-version", "99"]),
            says: vec!["--launch-template-version 99", "no such version"],
        },
        Case {
            what: "a launch template version that is not a number",
            edit: same,
            green: flags(&["--launch-template-version", "two"]),
            says: vec!["--launch-template-version \"two\""],
        },
        Case {
            what: "an AMI that does not exist",
            edit: same,
            green: flags(&["--ami", "ami-0000000000000000f"]),
            says: vec!["--ami ami-0000000000000000f", "no such image"],
        },
        Case {
            what: "an AMI id that is not one",
            edit: same,
            green: flags(&["--ami", "ubuntu"]),
            says: vec!["--ami \"ubuntu\"", "not an AMI id"],
        },
        Case {
            what: "an image for an Auto Scaling fleet",
            edit: same,
            green: flags(&["--image", "registry.example/app:2"]),
            says: vec!["--image is for ECS fleets", "fleet.kind is \"asg\""],
        },
        Case {
            what: "a hosted zone that does not exist",
            edit: |t, n| t.replace(&n.zone, "ZNOSUCHZONE0000"),
            green: flags(&ami),
            says: vec!["router.hosted_zone_id", "ZNOSUCHZONE0000"],
        },
        Case {
            what: "a set identifier that does not exist",
            edit: |t, n| t.replace(&format!("\"{}-b\"]", n.name), "\"ghost-b\"]"),
            green: flags(&ami),
            says: vec!["router.set_identifiers", "ghost-b"],
        },
        Case {
            what: "a group that does not exist",
            edit: |t, n| t.replace(&format!("group = \"{}\"", n.name), "group = \"ghost\""),
            green: flags(&ami),
            says: vec!["fleet.group", "ghost"],
        },
    ];
    for case in &cases {
        std::fs::write(&cfg, (case.edit)(&good, &names)).unwrap();
        refused(&m, &cfg, case).await;
        assert_eq!(
            asg_groups(&m, &f).await,
            vec![f.name.clone()],
            "{}: a group was made",
            case.what
        );
        assert_eq!(record_weights(&m, &f).await, (255, 0), "{}", case.what);
    }
}
