//! The instance-refresh adapter against a stand-in for the Auto Scaling API
//! (`tests/support/refresh_stand_in.rs`): an HTTP server speaking its query
//! protocol to the real SDK client, keeping refreshes the way the service does.

use super::*;
use crate::engine::rolling::{react, RollingStep};
use stand_in::{Refresh, Service};
use std::sync::Mutex;

#[path = "../../../../tests/support/refresh_stand_in.rs"]
mod stand_in;

/// The stand-in on a loopback port, and the adapter pointed at it.
async fn stand_in(since: Millis) -> (Arc<Mutex<Service>>, InstanceRefreshRollout) {
    let service = Arc::new(Mutex::new(Service {
        fixed_start: Some("2026-11-22T20:00:00Z".into()),
        ..Service::default()
    }));
    let addr = stand_in::serve(service.clone(), None).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let aws = Aws {
        sdk,
        calls: Arc::default(),
        shared: None,
    };
    let rollout = InstanceRefreshRollout::new(
        &aws,
        "web".into(),
        Template {
            id: "lt-1".into(),
            version: "7".into(),
        },
        Template {
            id: "lt-1".into(),
            version: "8".into(),
        },
        RefreshPlan {
            min_healthy_percent: 90,
            max_healthy_percent: 110,
            checkpoints: vec![20, 50, 100],
            checkpoint_delay_s: 300,
            alarms: vec!["web-5xx".into(), "web-p99".into()],
        },
        since,
    );
    (service, rollout)
}

/// 2026-11-22T19:59:00Z: a minute before the stand-in's refreshes start.
const SINCE: Millis = 1_795_377_540_000;

fn set(service: &Arc<Mutex<Service>>, status: &'static str, reason: &str, percent: i32) {
    let mut s = service.lock().unwrap();
    let r = &mut s.refreshes[0];
    r.status = status;
    r.reason = reason.into();
    r.percent = percent;
}

#[tokio::test]
async fn the_start_request_carries_the_strategy_the_alarms_and_the_target_version() {
    let (service, rollout) = stand_in(SINCE).await;
    assert_eq!(rollout.state().await.unwrap(), RolloutState::NotStarted);
    rollout.start().await.unwrap();
    let s = service.lock().unwrap();
    let start = s
        .requests
        .iter()
        .find(|r| r["Action"] == "StartInstanceRefresh")
        .expect("a StartInstanceRefresh request");
    let want = [
        ("AutoScalingGroupName", "web"),
        ("Strategy", "Rolling"),
        (
            "DesiredConfiguration.LaunchTemplate.LaunchTemplateId",
            "lt-1",
        ),
        ("DesiredConfiguration.LaunchTemplate.Version", "8"),
        ("Preferences.MinHealthyPercentage", "90"),
        ("Preferences.MaxHealthyPercentage", "110"),
        ("Preferences.SkipMatching", "true"),
        ("Preferences.AutoRollback", "true"),
        ("Preferences.CheckpointPercentages.member.1", "20"),
        ("Preferences.CheckpointPercentages.member.2", "50"),
        ("Preferences.CheckpointPercentages.member.3", "100"),
        ("Preferences.CheckpointDelay", "300"),
        ("Preferences.AlarmSpecification.Alarms.member.1", "web-5xx"),
        ("Preferences.AlarmSpecification.Alarms.member.2", "web-p99"),
    ];
    for (k, v) in want {
        assert_eq!(
            start.get(k).map(String::as_str),
            Some(v),
            "{k} in {start:?}"
        );
    }
}

#[tokio::test]
async fn each_refresh_status_maps_to_a_rollout_state_and_a_reaction() {
    let (service, rollout) = stand_in(SINCE).await;
    rollout.start().await.unwrap();
    // (status, state class, reaction with gates OK, reaction with a gate failing)
    let table: [(&str, &str, RollingStep, RollingStep); 9] = [
        (
            "Pending",
            "in_progress",
            RollingStep::Wait,
            RollingStep::Revert,
        ),
        (
            "InProgress",
            "in_progress",
            RollingStep::Wait,
            RollingStep::Revert,
        ),
        (
            "Baking",
            "in_progress",
            RollingStep::Wait,
            RollingStep::Revert,
        ),
        (
            "Successful",
            "completed",
            RollingStep::Bake,
            RollingStep::Revert,
        ),
        ("Failed", "failed", RollingStep::Revert, RollingStep::Revert),
        (
            "Cancelled",
            "stopped",
            RollingStep::Revert,
            RollingStep::Revert,
        ),
        (
            "RollbackInProgress",
            "rolling_back",
            RollingStep::Wait,
            RollingStep::Wait,
        ),
        (
            "RollbackSuccessful",
            "rolled_back",
            RollingStep::RolledBack {
                reason: "the platform rolled back on its own: alarm web-5xx in ALARM".into(),
            },
            RollingStep::RolledBack {
                reason: "the platform rolled back on its own: alarm web-5xx in ALARM".into(),
            },
        ),
        (
            "RollbackFailed",
            "revert_failed",
            RollingStep::Halt {
                reason: "putting the previous revision back failed: alarm web-5xx in ALARM".into(),
            },
            RollingStep::Halt {
                reason: "putting the previous revision back failed: alarm web-5xx in ALARM".into(),
            },
        ),
    ];
    for (status, class, ok, failing) in table {
        set(&service, status, "alarm web-5xx in ALARM", 40);
        let state = rollout.state().await.unwrap();
        let got = serde_json::to_value(&state).unwrap()["rollout"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(got, class, "{status}: {state:?}");
        assert_eq!(react(&state, false, false), ok, "{status}, gates OK");
        assert_eq!(
            react(&state, true, false),
            failing,
            "{status}, a gate failing"
        );
    }
    set(&service, "InProgress", "", 40);
    assert_eq!(
        rollout.state().await.unwrap(),
        RolloutState::InProgress {
            percent: Some(40),
            detail: String::new()
        }
    );
}

#[tokio::test]
async fn a_second_start_of_the_same_refresh_is_taken_as_done() {
    let (service, rollout) = stand_in(SINCE).await;
    rollout.start().await.unwrap();
    rollout.start().await.unwrap();
    let s = service.lock().unwrap();
    assert_eq!(s.refreshes.len(), 1, "one refresh");
    assert_eq!(
        s.requests
            .iter()
            .filter(|r| r["Action"] == "StartInstanceRefresh")
            .count(),
        2,
        "the second start reached the service and was refused there"
    );
}

#[tokio::test]
async fn revert_rolls_back_an_active_refresh() {
    let (service, rollout) = stand_in(SINCE).await;
    rollout.start().await.unwrap();
    set(&service, "InProgress", "", 30);
    rollout.revert().await.unwrap();
    assert!(matches!(
        rollout.state().await.unwrap(),
        RolloutState::RollingBack { .. }
    ));
    set(&service, "RollbackSuccessful", "rollback requested", 0);
    let state = rollout.state().await.unwrap();
    assert_eq!(
        react(&state, false, true),
        RollingStep::RolledBack {
            reason: "the previous revision is back".into()
        }
    );
}

#[tokio::test]
async fn revert_after_a_finished_refresh_refreshes_back_to_the_previous_version() {
    let (service, rollout) = stand_in(SINCE).await;
    rollout.start().await.unwrap();
    set(&service, "Successful", "", 100);
    // A gate fails during the bake: the refresh is over, so no rollback API.
    assert_eq!(
        react(&rollout.state().await.unwrap(), true, false),
        RollingStep::Revert
    );
    rollout.revert().await.unwrap();
    {
        let s = service.lock().unwrap();
        let actions: Vec<&str> = s.requests.iter().map(|r| r["Action"].as_str()).collect();
        assert!(
            actions.ends_with(&["RollbackInstanceRefresh", "StartInstanceRefresh"]),
            "{actions:?}"
        );
        assert_eq!(s.refreshes[0].version, "7", "back to the previous version");
    }
    assert!(matches!(
        rollout.state().await.unwrap(),
        RolloutState::RollingBack { .. }
    ));
    set(&service, "Successful", "", 100);
    assert!(matches!(
        rollout.state().await.unwrap(),
        RolloutState::RolledBack { .. }
    ));
}

#[tokio::test]
async fn refreshes_from_before_the_deployment_are_history() {
    let (service, rollout) = stand_in(SINCE + 3_600_000).await;
    service.lock().unwrap().refreshes.push(Refresh {
        id: "ir-old".into(),
        group: "web".into(),
        template: "lt-1".into(),
        status: "Successful",
        reason: String::new(),
        percent: 100,
        version: "8".into(),
        start: "2026-11-22T20:00:00Z".into(),
    });
    assert_eq!(rollout.state().await.unwrap(), RolloutState::NotStarted);
}

#[test]
fn a_refresh_plan_takes_the_strategy_and_at_most_ten_alarms() {
    let rolling = crate::strategy::Rolling {
        min_healthy_percent: 90,
        max_percent: 120,
        bake_ms: 1_500,
        step: Some(40),
        approve: None,
    };
    let alarms: Vec<String> = (0..12).map(|i| format!("alarm-{i}")).collect();
    let plan = RefreshPlan::of(&rolling, &alarms);
    assert_eq!(
        plan,
        RefreshPlan {
            min_healthy_percent: 90,
            max_healthy_percent: 120,
            checkpoints: vec![40, 80, 100],
            checkpoint_delay_s: 2,
            alarms: alarms[..10].to_vec(),
        }
    );
}
