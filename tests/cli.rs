//! Tier 5: the binary as a user runs it. Exit codes and messages.

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::Write;

fn teal() -> Command {
    let mut c = Command::cargo_bin("teal").expect("binary built");
    c.env_remove("TEAL_CONFIG")
        .env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION");
    c
}

/// A config file in a temp dir, its text being the sim example with `edit` applied.
fn config_with(edit: impl Fn(&str) -> String) -> tempfile::NamedTempFile {
    example_with("examples/sim/teal.toml", edit)
}

/// A config file in a temp dir, its text being `example` with `edit` applied.
fn example_with(example: &str, edit: impl Fn(&str) -> String) -> tempfile::NamedTempFile {
    let base = std::fs::read_to_string(example).expect("example exists");
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(edit(&base).as_bytes()).expect("write");
    f
}

#[test]
fn strategies_lists_the_builtins_with_their_steps() {
    let out = teal()
        .arg("strategies")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for name in [
        "all-at-once",
        "canary-10-5m",
        "canary-10-15m",
        "linear-10-every-1m",
        "linear-10-every-3m",
        "rolling",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("steps: 10% for 5m, 100%"), "{text}");
    assert!(text.contains("steps: 10% for 3m, 20% for 3m"), "{text}");
}

#[test]
fn plan_prints_the_schedule_of_every_example_without_network() {
    for example in [
        "examples/sim/teal.toml",
        "examples/ecs-alb/teal.toml",
        "examples/ecs-nlb/teal.toml",
        "examples/asg-route53/teal.toml",
        "examples/static-cloudfront/teal.toml",
    ] {
        teal()
            .args(["plan", "--config", example])
            .assert()
            .success()
            .stdout(
                predicate::str::contains("retire blue").and(predicate::str::contains("guarded by")),
            );
    }
    // The rolling example: an instance refresh, no traffic to shift.
    teal()
        .args(["plan", "--config", "examples/asg-rolling/teal.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "checkpoints at 25%, 50%, 75%, 100%, each before the last held 3m",
        ));
    // The config may also come from TEAL_CONFIG.
    teal()
        .arg("plan")
        .env("TEAL_CONFIG", "examples/ecs-alb/teal.toml")
        .assert()
        .success()
        .stdout(predicate::str::contains("plan for checkout"));
}

#[test]
fn plan_with_a_strategy_override_and_json() {
    let out = teal()
        .args([
            "plan",
            "--config",
            "examples/ecs-alb/teal.toml",
            "--strategy",
            "linear-10-every-1m",
            "--output",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
    assert_eq!(v["schedule"]["strategy"], "linear-10-every-1m");
    assert_eq!(v["schedule"]["steps"].as_array().unwrap().len(), 10);
    assert_eq!(v["schedule"]["retire_at_ms"], 14 * 60_000);
}

#[test]
fn bad_configs_exit_2_naming_file_and_line() {
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "unknown key",
            Box::new(|s: &str| s.replace("instances = 3", "instances = 3\nreplicas = 4")),
            ":13:1: unknown field `replicas`",
        ),
        (
            "weight 120",
            Box::new(|s: &str| s.replace("name = \"canary-10-5m\"", "steps = [{ weight = 120 }]")),
            ":23:21: strategy.steps[0].weight: weight must be 0..=100, got 120",
        ),
        (
            "empty steps",
            Box::new(|s: &str| s.replace("name = \"canary-10-5m\"", "steps = []")),
            ":23:9: strategy.steps: steps must not be empty",
        ),
        (
            "bad duration",
            Box::new(|s: &str| {
                s.replace(
                    "healthy_after = \"40s\"",
                    "healthy_after = \"forty seconds\"",
                )
            }),
            ":13:17: fleet.healthy_after: bad duration",
        ),
    ];
    for (what, edit, expected) in cases {
        eprintln!("case: {what}");
        let f = config_with(edit);
        let path = f.path().display().to_string();
        teal()
            .args(["plan", "--config", &path])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("{path}{expected}")))
            .stdout(predicate::str::is_empty());
        // Every command that reads the config refuses the same way, before
        // anything runs.
        let commands: [&[&str]; 12] = [
            &["deploy"],
            &["verify"],
            &["deploy", "--detach"],
            &["status"],
            &["shift", "--to", "green", "25%"],
            &["promote"],
            &["promote", "--full"],
            &["pause"],
            &["resume"],
            &["rollback"],
            &["retire"],
            &["reconcile", "--once"],
        ];
        for args in commands {
            teal()
                .args(args)
                .args(["--config", &path])
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!("{path}{expected}")))
                .stdout(predicate::str::is_empty());
        }
    }
}

#[test]
fn missing_config_unknown_strategy_and_bad_flags_exit_2() {
    teal()
        .args(["plan", "--config", "no/such/teal.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read config file no/such/teal.toml",
        ));
    teal()
        .args([
            "plan",
            "--config",
            "examples/sim/teal.toml",
            "--strategy",
            "canary-99",
        ])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown strategy \"canary-99\"")
                .and(predicate::str::contains("canary-10-5m")),
        );
    teal().args(["plan", "--frobnicate"]).assert().code(2);
    teal()
        .args([
            "deploy",
            "--config",
            "examples/sim/teal.toml",
            "--sim-fail-gate",
            "nope",
        ])
        .assert()
        .code(2);
}

#[test]
fn simulated_deploy_succeeds_with_exit_0() {
    teal()
        .args(["deploy", "--config", "examples/sim/teal.toml"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("weights now blue 90% / green 10% (read back)")
                .and(predicate::str::contains("outcome: Succeeded")),
        );
}

#[test]
fn a_failing_gate_rolls_back_with_exit_3_naming_the_gate() {
    teal()
        .args([
            "deploy",
            "--config",
            "examples/sim/teal.toml",
            "--sim-fail-gate",
            "web-5xx@3m",
        ])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "outcome: RolledBack: gate \"web-5xx\" is ALARM",
        ));
}

#[test]
fn green_never_healthy_times_out_with_exit_4() {
    let f = config_with(|s| s.replace("healthy_after = \"40s\"", "healthy_after = \"2h\""));
    teal()
        .args(["deploy", "--config", &f.path().display().to_string()])
        .assert()
        .code(4)
        .stdout(predicate::str::contains(
            "green did not become healthy within 10m",
        ));
}

#[test]
fn json_output_is_one_event_per_line() {
    let out = teal()
        .args([
            "deploy",
            "--config",
            "examples/sim/teal.toml",
            "--output",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let events: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "started");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert_eq!(last["outcome"]["outcome"], "succeeded");
    assert!(last["calls"]["router.set_weights"].as_u64().unwrap() >= 2);
}

#[test]
fn deploy_on_a_provider_pair_not_built_yet_is_refused_with_exit_2() {
    // ECS behind Route 53 needs per-slot load balancers teal does not manage yet.
    let text = std::fs::read_to_string("examples/ecs-alb/teal.toml").unwrap();
    let router = text.find("[router]").unwrap();
    let gates = text.find("[gates]").unwrap();
    let edited = format!(
        "{}[router]\nkind = \"route53\"\nhosted_zone_id = \"Z1\"\nrecord_name = \"api.example.com\"\nrecord_type = \"A\"\nset_identifiers = [\"a\", \"b\"]\n\n{}",
        &text[..router],
        &text[gates..]
    );
    let f = config_with(|_| edited.clone());
    let path = f.path().display().to_string();
    // `plan` and `verify` refuse it as `deploy` does: as the config is read.
    for args in [
        vec!["deploy", "--config", &path, "--image", "x:1"],
        vec!["plan", "--config", &path],
    ] {
        teal()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
            "router.kind: fleet.kind = \"ecs\" cannot be deployed behind router.kind = \"route53\"",
        ));
    }
}

#[test]
fn sim_only_flags_are_refused_elsewhere() {
    teal()
        .args([
            "deploy",
            "--config",
            "examples/ecs-alb/teal.toml",
            "--sim-fail-gate",
            "x@1m",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--sim-fail-gate applies to the simulated provider only",
        ));
}

#[test]
fn sim_replays_a_seed() {
    teal()
        .args(["sim", "--seed", "7"])
        .assert()
        .success()
        .stdout(predicate::str::contains("seed 7:").and(predicate::str::contains("outcome:")));
}

#[test]
fn shift_takes_a_role_and_a_percentage() {
    let f = config_with(|s: &str| s.to_string());
    let path = f.path().display().to_string();
    for bad in ["120%", "2.5%", "half"] {
        teal()
            .args(["shift", "--to", "green", bad, "--config", &path])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "is not a percentage from 0% to 100%",
            ));
    }
    teal()
        .args(["shift", "--to", "purple", "25%", "--config", &path])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'purple'"));
}

/// The example's `[strategy]` section replaced by `strategy`.
fn with_strategy(example: &str, strategy: &str) -> tempfile::NamedTempFile {
    example_with(example, |s| {
        let head = &s[..s.find("[strategy]").expect("a [strategy] section")];
        format!("{head}[strategy]\n{strategy}\n")
    })
}

/// `teal plan` of `example` with its strategy replaced by `strategy`.
fn plan_with_strategy(example: &str, strategy: &str) -> assert_cmd::assert::Assert {
    let config = with_strategy(example, strategy);
    teal()
        .args(["plan", "--config"])
        .arg(config.path())
        .assert()
}

#[test]
fn rolling_checkpoints_are_for_auto_scaling_only() {
    const ASG: &str = "examples/asg-route53/teal.toml";
    const ECS: &str = "examples/ecs-alb/teal.toml";
    let strategy =
        r#"rolling = { min_healthy_percent = 90, max_percent = 110, step = 25, bake = "2m" }"#;
    plan_with_strategy(ASG, strategy)
        .success()
        .stdout(predicate::str::contains(
            "an instance refresh to the new launch template version; checkpoints at 25%, 50%, 75%, 100%, each before the last held 2m",
        ));
    // Three checkpoints of 2m before the last cannot fit in a 5m timeout.
    plan_with_strategy(ASG, &format!("{strategy}\ngreen_healthy_timeout = \"5m\""))
        .code(2)
        .stderr(predicate::str::contains(
            "waits 2m at each checkpoint before the last, 6m in all, but green_healthy_timeout = 5m",
        ));
    // An instance refresh's max healthy percentage is at most 100 above its minimum.
    plan_with_strategy(
        ASG,
        &strategy.replace("min_healthy_percent = 90", "min_healthy_percent = 0"),
    )
    .code(2)
    .stderr(predicate::str::contains(
        "an instance refresh takes max_percent (110) at most 100 above min_healthy_percent (0)",
    ));
    plan_with_strategy(ECS, strategy)
        .code(2)
        .stderr(predicate::str::contains(
            "rolling.step sets an Auto Scaling instance refresh's checkpoints",
        ));
    plan_with_strategy(ECS, &strategy.replace(", step = 25", ""))
        .success()
        .stdout(predicate::str::contains("UpdateService"));
}

#[test]
fn a_rolling_update_takes_the_hooks_it_has_a_point_for() {
    let rolling = "name = \"rolling\"\n\n[hooks]\nbefore_traffic = \"./smoke.sh\"\nafter_step = \"./validate.sh\"";
    plan_with_strategy("examples/ecs-alb/teal.toml", rolling)
        .success()
        .stdout(predicate::str::contains(
            "before-traffic runs before the update starts",
        ))
        .stdout(predicate::str::contains(
            "after-step runs once the bake is over",
        ));
    plan_with_strategy(
        "examples/ecs-alb/teal.toml",
        &format!("{rolling}\nbefore_retire = \"./drain.sh\""),
    )
    .code(2)
    .stderr(predicate::str::contains(
        "hooks.before_retire has no point in a rolling update",
    ));
}

#[test]
fn auto_scaling_behind_route53_needs_target_groups_for_blue_green_only() {
    // The example without its fleet.target_groups.
    let without = |s: &str| {
        let start = s.find("target_groups = [").expect("target_groups");
        let end = start + s[start..].find("]\n").expect("its end") + 2;
        format!("{}{}", &s[..start], &s[end..])
    };
    let blue_green = example_with("examples/asg-route53/teal.toml", without);
    teal()
        .args(["plan", "--config"])
        .arg(blue_green.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "behind Route 53, an asg fleet needs target_groups",
        ));
    let rolling = example_with("examples/asg-route53/teal.toml", |s| {
        let s = without(s);
        let head = &s[..s.find("[strategy]").expect("a [strategy] section")];
        format!("{head}[strategy]\nname = \"rolling\"\n")
    });
    teal()
        .args(["plan", "--config"])
        .arg(rolling.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("an instance refresh"));
}

/// The sim example with canary analysis appended: 10 s periods, `min_points`.
fn judged(min_points: u32, extra: &str) -> tempfile::NamedTempFile {
    let extra = extra.to_string();
    config_with(move |s| {
        format!(
            "{s}\n[analysis]\nperiod = \"10s\"\nmin_points = {min_points}\n{extra}\n[[analysis.metric]]\npreset = \"alb-5xx-share\"\ncritical = true\nmax = 0.05\n"
        )
    })
}

/// `teal COMMAND --config CFG`, which must succeed; its stdout.
fn stdout_of(command: &str, cfg: &tempfile::NamedTempFile) -> String {
    let out = teal()
        .args([command, "--config", cfg.path().to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn plan_shows_the_analysis_and_warns_of_a_bake_too_short_for_it() {
    let out = stdout_of("plan", &judged(40, ""));
    for line in [
        "analysis  1 metric(s) of both slots, 10s periods, judged 20s after each bake (late data)",
        "alb-5xx-share [critical]: fails if green is surely higher than blue (confidence 0.99, ≥ 40 points a slot) by more than 10%; green above 0.05 fails at once; FILL(errors, 0) / requests",
        "1/2            10%    90%        5m        0s  web-5xx, web-p99-latency, then judged against blue",
        "warning: step 1 (10%) bakes 5m, but 40 data points a slot at a 10s period need 6m 40s",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    // A bake long enough (30 points of 10 s in 5m): no warning.
    let out = stdout_of("plan", &judged(30, ""));
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn a_deployment_on_the_sim_provider_is_judged_and_a_bad_analysis_is_exit_2() {
    let out = stdout_of("deploy", &judged(20, ""));
    assert!(out.contains("analysis of step 1: PASS"), "{out}");
    let bad = judged(20, "confidence = 1.5");
    teal()
        .args(["plan", "--config", bad.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "analysis.confidence: a confidence is between 0 and 1, exclusive",
        ));
}

/// The simulated release example, copied with `edit` applied to its release file.
fn release_example(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["api.toml", "worker.toml", "web.toml"] {
        std::fs::copy(format!("examples/release-sim/{f}"), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string("examples/release-sim/release.toml").unwrap();
    let file = dir.path().join("release.toml");
    std::fs::write(&file, edit(&text)).unwrap();
    (dir, file)
}

/// `teal release deploy FILE --revision v2 --output json EXTRA...`, its exit
/// code asserted; its JSON lines.
fn release_deploy(file: &str, extra: &[&str], code: i32) -> Vec<serde_json::Value> {
    let args = [
        "release",
        "deploy",
        file,
        "--revision",
        "v2",
        "--output",
        "json",
    ];
    let out = teal().args(args).args(extra).assert().code(code);
    json_lines(&out.get_output().stdout)
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_simulated_release_runs_its_waves_in_order_and_rollback_release_sends_wave_one_back() {
    let (_dir, file) = release_example(|t| t.to_string());
    let f = file.to_str().unwrap();
    let lines = release_deploy(f, &[], 0);
    let at = |p: &dyn Fn(&serde_json::Value) -> bool| lines.iter().position(p).expect("a line");
    let web_started = at(&|l| l["event"] == "started" && l["service"] == "web");
    for s in ["api", "worker"] {
        let held = at(&|l| {
            l["event"] == "release_member"
                && l["service"] == s
                && l["standing"]["state"] == "holding"
        });
        assert!(held < web_started, "{s} holds before web starts");
    }
    assert_eq!(lines.last().unwrap()["event"], "release_finished");
    assert_eq!(lines.last().unwrap()["outcome"], "succeeded");

    // web's alarm fires in its bake (the release starts at 0; web's wave at about 2m30s).
    let lines = release_deploy(f, &["--sim-fail-gate", "web:web-5xx@4m"], 3);
    for s in ["api", "worker", "web"] {
        let end = lines
            .iter()
            .find(|l| l["event"] == "finished" && l["service"] == s)
            .unwrap_or_else(|| panic!("{s} finished"));
        assert_eq!(end["outcome"]["outcome"], "rolled_back", "{end}");
        let kind = &end["outcome"]["reason"]["kind"];
        assert_eq!(*kind == "release_failed", s != "web", "{s}: {end}");
    }
    let last = lines.last().unwrap();
    assert!(
        last["first"]
            .as_str()
            .unwrap()
            .starts_with("web failed: gate \"web-5xx\""),
        "{last}"
    );
}

#[test]
fn bad_releases_exit_2_naming_the_file_and_field_before_any_change() {
    type Edit<'a> = &'a dyn Fn(&str) -> String;
    let cases: [(&str, Edit, &str); 4] = [
        (
            "an unknown service file",
            &|t| t.replace("\"web.toml\"", "\"nope.toml\""),
            "wave[1].services[0]: cannot read",
        ),
        (
            "a service in two waves",
            &|t| t.replace("\"web.toml\"", "\"api.toml\""),
            "wave[1].services[0]: ",
        ),
        (
            "max_parallel = 0",
            &|t| t.replace("name = \"front\"", "name = \"front\"\nmax_parallel = 0"),
            "wave[1].max_parallel",
        ),
        (
            "an unknown policy",
            &|t| t.replace("\"rollback-release\"", "\"retry\""),
            "release.on_failure",
        ),
    ];
    for (what, edit, field) in cases {
        let (_dir, file) = release_example(edit);
        for cmd in ["plan", "deploy"] {
            let out = teal()
                .args(["release", cmd, file.to_str().unwrap()])
                .output()
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(out.status.code(), Some(2), "{what} ({cmd}): {stderr}");
            assert!(
                stderr.contains("release.toml:") && stderr.contains(field),
                "{what} ({cmd}): {stderr}"
            );
            assert!(!stdout.contains("deploying"), "{what} ({cmd}): {stdout}");
        }
    }
    // A pipeline entry that matches no service, and a gate flag for a service the release lacks.
    let (dir, file) = release_example(|t| t.to_string());
    let images = dir.path().join("imagedefinitions.json");
    std::fs::write(&images, r#"[{"name":"cron","imageUri":"repo/cron:2"}]"#).unwrap();
    teal()
        .args([
            "release",
            "deploy",
            file.to_str().unwrap(),
            "--image-definitions",
            images.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "entry \"cron\" matches no service",
        ));
    teal()
        .args([
            "release",
            "deploy",
            file.to_str().unwrap(),
            "--sim-fail-gate",
            "db:x@1m",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no service \"db\""));
}

#[test]
fn release_plan_shows_waves_and_warns_of_a_keep_alive_shorter_than_the_later_waves() {
    let (dir, file) = release_example(|t| t.to_string());
    let f = file.to_str().unwrap();
    teal()
        .args(["release", "plan", f])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("wave 2 \"front\"")
                .and(predicate::str::contains("warning").not()),
        );
    for s in ["api.toml", "worker.toml"] {
        let p = dir.path().join(s);
        let t = std::fs::read_to_string(&p)
            .unwrap()
            .replace("keep_alive = \"15m\"", "keep_alive = \"1m\"");
        std::fs::write(&p, t).unwrap();
    }
    teal()
        .args(["release", "plan", f])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "warning: api: its keep-alive (1m) ends before the later waves",
        ));
}

#[test]
fn version_names_the_commit_and_completions_and_the_man_page_cover_every_command() {
    let out = teal().arg("--version").assert().code(0);
    let version = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built from this checkout: its commit (dirty or not).
        Some(h) => assert!(
            version.starts_with(&format!("teal {} ({h}", env!("CARGO_PKG_VERSION"))),
            "{version}"
        ),
        None => assert!(version.contains("(unknown)"), "{version}"),
    }
    let bash = teal().args(["completions", "bash"]).assert().code(0);
    let bash = String::from_utf8_lossy(&bash.get_output().stdout).into_owned();
    let man = teal().arg("man").assert().code(0);
    let man = String::from_utf8_lossy(&man.get_output().stdout).into_owned();
    assert!(
        man.starts_with(".ie") && man.contains(".TH teal 1"),
        "{man}"
    );
    for command in [
        "deploy",
        "approve",
        "rollback",
        "release",
        "reconcile",
        "completions",
    ] {
        assert!(bash.contains(command), "bash completion of {command}");
        assert!(man.contains(command), "man page lists {command}");
    }
    teal().args(["completions", "tcsh"]).assert().code(2);
}

/// What bash completes for the words of `line` (the last one being typed),
/// with `teal completions bash` loaded as a user's shell would load it.
fn bash_completes(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line.join(" ");
    let program = format!(
        "source {script:?} || exit 9
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE=\"{words}\"
COMP_POINT=${{#COMP_LINE}}
_teal teal {cur:?} {prev:?}
printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display().to_string(),
        cword = line.len() - 1,
        cur = line[line.len() - 1],
        prev = line[line.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("teal.bash");
    let out = teal().args(["completions", "bash"]).assert().code(0);
    std::fs::write(&script, &out.get_output().stdout).unwrap();
    assert_eq!(bash_completes(&script, &["teal", "dep"]), ["deploy"]);
    assert_eq!(bash_completes(&script, &["teal", "appr"]), ["approve"]);
    assert_eq!(
        bash_completes(&script, &["teal", "deploy", "--con"]),
        ["--config"]
    );
}

#[test]
fn a_packer_manifest_gives_green_the_last_runs_ami_of_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("packer-manifest.json");
    std::fs::write(
        &manifest,
        r#"{"builds": [
            {"name": "web", "builder_type": "amazon-ebs", "artifact_id": "eu-west-1:ami-0aaaaaaaaaaaaaaa1,us-east-1:ami-0aaaaaaaaaaaaaaa2", "packer_run_uuid": "run-1"},
            {"name": "web", "builder_type": "amazon-ebs", "artifact_id": "eu-west-1:ami-0bbbbbbbbbbbbbbb1", "packer_run_uuid": "run-2"}],
          "last_run_uuid": "run-2"}"#,
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let deploy = |extra: &[&str]| {
        let mut c = teal();
        c.args([
            "deploy",
            "--config",
            "examples/sim/teal.toml",
            "--packer-manifest",
            m,
        ])
        .args(extra)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
        c
    };
    let out = deploy(&["--region", "eu-west-1", "--output", "json"])
        .assert()
        .code(0);
    let first = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .next()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(first["revision"], "ami-0bbbbbbbbbbbbbbb1");
    // The region from the environment, as the SDK would take it.
    deploy(&[]).env("AWS_REGION", "eu-west-1").assert().code(0);
    // Built for us-east-1 by an older run only: stale, refused before anything runs.
    deploy(&["--region", "us-east-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "stale: the last run (run-2) built no AMI in us-east-1",
        ))
        .stdout(predicate::str::is_empty());
    deploy(&[])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "which region's AMI? pass --region or set AWS_REGION",
        ));
    teal()
        .args([
            "verify",
            "--config",
            "examples/ecs-alb/teal.toml",
            "--packer-manifest",
            m,
        ])
        .args(["--region", "eu-west-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--packer-manifest is for Auto Scaling fleets",
        ));
    std::fs::write(&manifest, "{\"builds\": 3}").unwrap();
    deploy(&["--region", "eu-west-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a Packer manifest"));
}
