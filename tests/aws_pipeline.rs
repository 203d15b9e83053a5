//! Tier 3: teal as the last stage of a CodePipeline, run from CodeBuild,
//! against moto in server mode with the real SDK: the ECS deploy action's
//! `imagedefinitions.json` as input, CodeBuild's variables in the
//! environment, stdout a pipe as in a build log.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use support::*;

/// Every character of a CI log line: printable, or a tab. No ANSI escape,
/// no carriage return, no backspace (a redrawn progress bar leaves those).
fn plain(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(format!(
                "line {}: control character {c:?} in {line:?}",
                n + 1
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codebuild_deploy_from_image_definitions_writes_plain_lines() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (dir, cfg) = config(&f, FAST_CANARY);
    let defs = dir.path().join("imagedefinitions.json");
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:7f3c2a1";
    std::fs::write(&defs, format!(r#"[{{"name":"app","imageUri":"{image}"}}]"#)).unwrap();
    let out = teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image-definitions",
            defs.to_str().unwrap(),
        ],
    )
    .env("CODEBUILD_BUILD_ID", "shop-deploy:0f6c2d9e")
    .env("CODEBUILD_INITIATOR", "codepipeline/shop")
    .output()
    .await
    .unwrap();
    ecs.abort();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    plain(&stdout).unwrap();
    plain(&stderr).unwrap();
    // One timestamped line per change; the revision is the image's tag.
    for line in stdout.lines().filter(|l| !l.starts_with("AWS API calls")) {
        assert!(
            line.len() > 22 && line.as_bytes()[4] == b'-' && line[19..].starts_with("Z  "),
            "not a timestamped line: {line:?}"
        );
    }
    assert!(
        stdout.contains(&format!("deploying {} 7f3c2a1 over", f.name)),
        "{stdout}"
    );

    // Green's task definition runs the image from the file.
    assert_eq!(
        green_images(&c, &f).await,
        vec![("app".to_string(), image.to_string())]
    );

    // The ledger kept the build; `teal status` shows it.
    let status = status_json(&m, &cfg).await;
    assert_eq!(status["build"]["id"], "shop-deploy:0f6c2d9e");
    assert_eq!(status["build"]["initiator"], "codepipeline/shop");
    assert_eq!(status["outcome"]["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pipeline_file_is_refused_before_any_call() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (dir, cfg) = config(&f, FAST_CANARY);
    let cases = [
        (
            "imagedefinitions.json",
            "--image-definitions",
            "",
            "the file is empty",
        ),
        (
            "imagedefinitions.json",
            "--image-definitions",
            r#"[{"name":"app"}]"#,
            "entry 0 (app) has no \"imageUri\"",
        ),
        (
            "imageDetail.json",
            "--image-detail",
            "{}",
            "no \"ImageURI\"",
        ),
        (
            "taskdef.json",
            "--task-definition",
            r#"{"family": "app"}"#,
            "takes an ARN or family:revision, not a file",
        ),
    ];
    for (name, flag, body, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let (stdout, stderr) = run_teal(
            &m,
            &[
                "deploy",
                "--config",
                cfg.to_str().unwrap(),
                flag,
                path.to_str().unwrap(),
            ],
            2,
        )
        .await;
        let said = format!("{}: {says}", path.display());
        assert!(stderr.contains(&said), "{flag} {body:?}: {stderr}");
        // Refused before the SDK is even set up: no call, so no call summary.
        assert!(!stdout.contains("AWS API calls"), "{stdout}");
    }
    assert_eq!(weights(&c, &f).await, (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_definition_for_a_container_blue_lacks_is_refused_by_the_preflight() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (dir, cfg) = config(&f, FAST_CANARY);
    let defs = dir.path().join("imagedefinitions.json");
    std::fs::write(
        &defs,
        r#"[{"name":"app","imageUri":"r/app:2"},{"name":"sidecar","imageUri":"r/side:2"}]"#,
    )
    .unwrap();
    let (stdout, stderr) = run_teal(
        &m,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--image-definitions",
            defs.to_str().unwrap(),
        ],
        2,
    )
    .await;
    assert!(
        stderr.contains("has no container sidecar (it has app)"),
        "{stderr}"
    );
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new());
    assert_eq!(weights(&c, &f).await, (100, 0), "no traffic moved");
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_lists_every_problem_of_a_broken_setup_and_changes_nothing() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let path = cfg.to_str().unwrap();

    // Ready: exit 0, and only reads.
    let (stdout, _) = run_teal(&m, &["verify", "--config", path, "--image", "r/app:2"], 0).await;
    assert!(stdout.contains("ready: "), "{stdout}");
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new(), "{stdout}");

    // Broken four ways: an alarm that does not exist, one already in ALARM,
    // a target group that does not exist, and no image for green.
    set_alarm(&c, &f.alarms[1], StateValue::Alarm).await;
    let missing_tg = f.tg_b.replace(&format!("{}-b", f.name), "nosuchgroup");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&f.alarms[0], "no-such-alarm")
        .replace(&f.tg_b, &missing_tg);
    std::fs::write(&cfg, text).unwrap();
    let (stdout, stderr) = run_teal(&m, &["verify", "--config", path], 2).await;
    for problem in [
        "gate \"no-such-alarm\" does not exist",
        &format!("gate {:?} is already in ALARM", f.alarms[1]),
        "nosuchgroup",
        "what should green run?",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("problem(s)"), "{stderr}");
    assert_eq!(mutating_calls(&stdout), Vec::<String>::new(), "{stdout}");
    assert_eq!(weights(&c, &f).await, (100, 0));
    assert_eq!(active_services(&c, &f).await, vec![f.name.clone()]);
}

/// `examples/codepipeline/prerequisites.yml`, created as a stack on moto, is
/// all teal needs: `verify` passes and a deployment succeeds on it, turning
/// the stack's plain forward into the weighted one. (moto's CloudFormation
/// has no alarms; the fixture makes them with the template's names.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prerequisites_stack_is_what_a_deployment_needs() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Stack).await;
    let ecs = register_targets_like_ecs(&c, &f, None);
    let (_dir, cfg) = config(&f, FAST_CANARY);
    let (stdout, _) = app_2(&m, "verify", &cfg, &[], 0).await;
    assert!(stdout.contains("every check passed"), "{stdout}");
    deploy_app_2(&m, &cfg, &[], 0).await;
    ecs.abort();
    assert_eq!(weights(&c, &f).await, (0, 100));
}
