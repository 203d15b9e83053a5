//! Tier 3: the rolling strategy on Auto Scaling, `teal deploy` end to end:
//! the fleet's group refreshed in place to a new launch template version.
//!
//! moto has no instance refresh, so `teal` is pointed (with
//! `AWS_ENDPOINT_URL_AUTO_SCALING`) at the stand-in of
//! `support/refresh_stand_in.rs`, which answers the three refresh actions
//! itself and passes every other Auto Scaling call to moto unchanged. So the
//! group, its tags, its launch template versions, the alarms and the Route 53
//! ledger are moto's; only the refresh's progress is the stand-in's.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::refresh_stand_in::Service;
use support::*;

const ROLLING: &str = r#"rolling = { min_healthy_percent = 50, max_percent = 150, step = 50, bake = "2s" }
poll = "1s"
green_healthy_timeout = "30s""#;

/// A new group, the stand-in in front of moto (refreshes held at InProgress
/// if `hold`), and a rolling config for the group (behind Route 53, with no
/// fleet.target_groups): the fixture, the
/// stand-in's state and address, the config (and its directory).
async fn rolling_fixture(
    m: &Moto,
    hold: bool,
) -> (
    AsgFixture,
    Arc<Mutex<Service>>,
    String,
    (tempfile::TempDir, std::path::PathBuf),
) {
    let f = asg_fixture(m).await;
    let (service, proxy) = refresh_stand_in(m, hold).await;
    let (dir, cfg) = asg_config(&f, ROLLING);
    // A rolling update needs no target groups: the refresh judges health.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("target_groups = [\"{}\", \"{}\"]\n", f.tg_a, f.tg_b);
    assert!(text.contains(&line), "{text}");
    std::fs::write(&cfg, text.replace(&line, "")).unwrap();
    (f, service, proxy, (dir, cfg))
}

/// The one refresh was rolled back, on one request.
fn assert_rolled_back(service: &Arc<Mutex<Service>>) {
    assert_eq!(requests(service, "RollbackInstanceRefresh").len(), 1);
    let s = service.lock().unwrap();
    assert_eq!(s.refreshes.len(), 1, "{:?}", s.refreshes);
    assert_eq!(s.refreshes[0].status, "RollbackSuccessful");
}

/// `teal deploy --ami AMI_GREEN` through the stand-in, to a completed update.
async fn deploy_green(m: &Moto, proxy: &str, cfg: &str) {
    let (stdout, _) = run_teal_via(
        m,
        proxy,
        &["deploy", "--config", cfg, "--ami", AMI_GREEN],
        0,
    )
    .await;
    assert!(stdout.contains("rolling update completed"), "{stdout}");
}

/// The instance-refresh requests the stand-in answered, by action.
fn requests(service: &Arc<Mutex<Service>>, action: &str) -> Vec<BTreeMap<String, String>> {
    service
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r["Action"] == action)
        .cloned()
        .collect()
}

/// The fixture's group as moto describes it: its launch template version and tags.
async fn group(m: &Moto, f: &AsgFixture) -> (String, BTreeMap<String, String>) {
    let asg = aws_sdk_autoscaling::Client::new(&sdk(m).await);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&f.name)
        .auto_scaling_group_names(format!("{}-a", f.name))
        .auto_scaling_group_names(format!("{}-b", f.name))
        .send()
        .await
        .unwrap();
    let groups = out.auto_scaling_groups();
    assert_eq!(groups.len(), 1, "one group, updated in place: {groups:?}");
    let g = &groups[0];
    assert_eq!(g.auto_scaling_group_name(), Some(f.name.as_str()));
    let tags = g
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let version = g.launch_template().unwrap().version().unwrap().to_string();
    (version, tags)
}

/// The AMI of a version of the fixture's launch template.
async fn ami_of(m: &Moto, f: &AsgFixture, version: &str) -> String {
    let c = clients(m).await;
    let v = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&f.template_id)
        .versions(version)
        .send()
        .await
        .unwrap();
    v.launch_template_versions()[0]
        .launch_template_data()
        .unwrap()
        .image_id()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_refreshes_the_group_to_a_new_launch_template_version() {
    let Some(m) = moto() else { return };
    let (f, service, proxy, (_dir, cfg)) = rolling_fixture(&m, false).await;
    let cfg = cfg.to_str().unwrap();

    let (plan, _) = run_teal_via(&m, &proxy, &["plan", "--config", cfg], 0).await;
    assert!(
        plan.contains("an instance refresh to the new launch template version; checkpoints at 50%, 100%, each before the last held 2s"),
        "{plan}"
    );
    // Read-only checks first: a refresh someone else has under way is refused...
    service.lock().unwrap().hold = true;
    service
        .lock()
        .unwrap()
        .refreshes
        .push(support::refresh_stand_in::Refresh {
            id: "ir-theirs".into(),
            group: f.name.clone(),
            status: "InProgress",
            reason: String::new(),
            percent: 30,
            template: f.template_id.clone(),
            version: "1".into(),
            start: "2026-01-01T00:00:00Z".into(),
        });
    let (_, stderr) = run_teal_via(
        &m,
        &proxy,
        &["verify", "--config", cfg, "--ami", AMI_GREEN],
        2,
    )
    .await;
    assert!(
        stderr.contains("an instance refresh of")
            && stderr.contains("is under way (ir-theirs, InProgress)"),
        "{stderr}"
    );
    {
        let mut s = service.lock().unwrap();
        s.refreshes[0].status = "Successful";
        s.hold = false;
    }
    // ... and so is a version the template lacks.
    let (_, stderr) = run_teal_via(
        &m,
        &proxy,
        &["verify", "--config", cfg, "--launch-template-version", "9"],
        2,
    )
    .await;
    assert!(
        stderr.contains("--launch-template-version 9: launch template")
            && stderr.contains("has no such version"),
        "{stderr}"
    );
    run_teal_via(
        &m,
        &proxy,
        &["verify", "--config", cfg, "--ami", AMI_GREEN],
        0,
    )
    .await;
    assert!(
        requests(&service, "StartInstanceRefresh").is_empty(),
        "verify changes nothing"
    );

    deploy_green(&m, &proxy, cfg).await;

    // One refresh, to a new version made from blue's with the new AMI, under
    // the strategy's bounds and checkpoints and the gates' alarm.
    let starts = requests(&service, "StartInstanceRefresh");
    assert_eq!(starts.len(), 1, "{starts:?}");
    let start = &starts[0];
    let new_version = start["DesiredConfiguration.LaunchTemplate.Version"].clone();
    assert_ne!(new_version, "1", "a new version, not blue's");
    assert_eq!(ami_of(&m, &f, &new_version).await, AMI_GREEN);
    let want = [
        ("AutoScalingGroupName", f.name.as_str()),
        ("Strategy", "Rolling"),
        (
            "DesiredConfiguration.LaunchTemplate.LaunchTemplateId",
            f.template_id.as_str(),
        ),
        ("Preferences.MinHealthyPercentage", "50"),
        ("Preferences.MaxHealthyPercentage", "150"),
        ("Preferences.CheckpointPercentages.member.1", "50"),
        ("Preferences.CheckpointPercentages.member.2", "100"),
        ("Preferences.CheckpointDelay", "2"),
        ("Preferences.AutoRollback", "true"),
        (
            "Preferences.AlarmSpecification.Alarms.member.1",
            f.alarms[0].as_str(),
        ),
    ];
    for (k, v) in want {
        assert_eq!(
            start.get(k).map(String::as_str),
            Some(v),
            "{k} in {start:?}"
        );
    }
    assert!(requests(&service, "RollbackInstanceRefresh").is_empty());

    // The same group, on the new version, tagged with where it came from.
    let (version, tags) = group(&m, &f).await;
    assert_eq!(version, new_version);
    assert_eq!(
        tags.get("teal:rollout-from").map(String::as_str),
        Some(format!("{}:1", f.template_id).as_str())
    );
    assert_eq!(
        tags.get("teal:rollout-to"),
        Some(&format!("{}:{new_version}", f.template_id))
    );
    // Traffic never moved: the records are as the fixture made them.
    assert_eq!(record_weights(&m, &f).await, (255, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_mid_refresh_rolls_the_refresh_back_and_exits_3() {
    let Some(m) = moto() else { return };
    let (f, service, proxy, (_dir, cfg)) = rolling_fixture(&m, true).await;
    let deploy = teal_via(
        &m,
        &proxy,
        &[
            "deploy",
            "--config",
            cfg.to_str().unwrap(),
            "--ami",
            AMI_GREEN,
        ],
    )
    .spawn()
    .unwrap();
    wait_for_refresh(&service, "InProgress").await;
    set_alarm(&clients(&m).await, &f.alarms[0], StateValue::Alarm).await;

    let out = deploy.wait_with_output().await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&f.alarms[0]),
        "the reason names the gate: {stdout}"
    );
    assert_rolled_back(&service);
    let (version, _) = group(&m, &f).await;
    assert_eq!(version, "1", "the group is still on blue's version");

    // Fixed, the same revision again: the group's tags and the rolled-back
    // refresh are the first deployment's, so this one starts its own.
    set_alarm(&clients(&m).await, &f.alarms[0], StateValue::Ok).await;
    service.lock().unwrap().hold = false;
    let cfg = cfg.to_str().unwrap();
    deploy_green(&m, &proxy, cfg).await;
    assert_eq!(requests(&service, "StartInstanceRefresh").len(), 2);
    assert_ne!(group(&m, &f).await.0, "1", "on the new version now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_rolls_back_a_refresh_whose_deploy_was_killed() {
    let Some(m) = moto() else { return };
    let (f, service, proxy, (_dir, cfg)) = rolling_fixture(&m, true).await;
    let cfg = cfg.to_str().unwrap();
    let mut deploy = teal_via(&m, &proxy, &["deploy", "--config", cfg, "--ami", AMI_GREEN])
        .spawn()
        .unwrap();
    wait_for_refresh(&service, "InProgress").await;
    deploy.kill().await.unwrap(); // SIGKILL: nothing written on the way out

    // A new process knows the refresh and the way back from the group's tags.
    let (status, _) = run_teal_via(
        &m,
        &proxy,
        &["status", "--config", cfg, "--output", "json"],
        0,
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(status["phase"], "updating", "{status}");
    assert_eq!(status["rollout"]["rollout"], "in_progress", "{status}");
    let (stdout, _) = run_teal_via(&m, &proxy, &["rollback", "--config", cfg], 3).await;
    assert!(stdout.contains("operator ran `teal rollback`"), "{stdout}");
    assert_eq!(requests(&service, "StartInstanceRefresh").len(), 1);
    assert_rolled_back(&service);
    assert_eq!(group(&m, &f).await.0, "1", "still on blue's version");
}
