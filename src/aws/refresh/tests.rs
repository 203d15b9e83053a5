//! The instance-refresh adapter against a stand-in for the Auto Scaling API:
//! an HTTP server speaking its query protocol (form-encoded requests, XML
//! answers, AWS error documents) to the real SDK client. It keeps refreshes
//! the way the service does: newest first, one active at a time
//! (`InstanceRefreshInProgress`), rollback only of an active one
//! (`ActiveInstanceRefreshNotFound` otherwise).

use super::*;
use crate::engine::rolling::{react, RollingStep};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Refresh {
    id: String,
    status: &'static str,
    reason: String,
    percent: i32,
    version: String,
    start: String,
}

#[derive(Debug, Default)]
struct Service {
    /// Newest first.
    refreshes: Vec<Refresh>,
    /// Every request's form fields, in order.
    requests: Vec<BTreeMap<String, String>>,
}

const ACTIVE: [&str; 5] = [
    "Pending",
    "InProgress",
    "Baking",
    "Cancelling",
    "RollbackInProgress",
];
const NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

impl Service {
    fn answer(&mut self, form: BTreeMap<String, String>) -> (u16, String) {
        self.requests.push(form.clone());
        let action = form.get("Action").cloned().unwrap_or_default();
        let ok = |body: String| {
            (
                200,
                format!(
                    "<{action}Response xmlns=\"{NS}\"><{action}Result>{body}</{action}Result>\
                     <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>"
                ),
            )
        };
        let error = |code: &str, message: &str| {
            (
                400,
                format!(
                    "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
                ),
            )
        };
        let active = self
            .refreshes
            .first()
            .filter(|r| ACTIVE.contains(&r.status));
        match action.as_str() {
            "StartInstanceRefresh" => {
                if active.is_some() {
                    return error(
                        "InstanceRefreshInProgress",
                        "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
                    );
                }
                let id = format!("ir-{}", self.refreshes.len() + 1);
                self.refreshes.insert(
                    0,
                    Refresh {
                        id: id.clone(),
                        status: "Pending",
                        reason: String::new(),
                        percent: 0,
                        version: form["DesiredConfiguration.LaunchTemplate.Version"].clone(),
                        start: "2026-11-22T20:00:00Z".into(),
                    },
                );
                ok(format!("<InstanceRefreshId>{id}</InstanceRefreshId>"))
            }
            "RollbackInstanceRefresh" => match self.refreshes.first_mut() {
                Some(r) if ["Pending", "InProgress", "Baking"].contains(&r.status) => {
                    r.status = "RollbackInProgress";
                    r.reason = "rollback requested".into();
                    let id = r.id.clone();
                    ok(format!("<InstanceRefreshId>{id}</InstanceRefreshId>"))
                }
                _ => error(
                    "ActiveInstanceRefreshNotFound",
                    "No active Instance Refresh found for the group.",
                ),
            },
            "DescribeInstanceRefreshes" => {
                let members: String = self
                    .refreshes
                    .iter()
                    .map(|r| {
                        format!(
                            "<member><InstanceRefreshId>{}</InstanceRefreshId>\
                             <AutoScalingGroupName>web</AutoScalingGroupName>\
                             <Status>{}</Status><StatusReason>{}</StatusReason>\
                             <StartTime>{}</StartTime><PercentageComplete>{}</PercentageComplete>\
                             <DesiredConfiguration><LaunchTemplate><LaunchTemplateId>lt-1</LaunchTemplateId>\
                             <Version>{}</Version></LaunchTemplate></DesiredConfiguration></member>",
                            r.id, r.status, r.reason, r.start, r.percent, r.version
                        )
                    })
                    .collect();
                ok(format!("<InstanceRefreshes>{members}</InstanceRefreshes>"))
            }
            other => error(
                "InvalidAction",
                &format!("the stand-in does not do {other}"),
            ),
        }
    }
}

/// The stand-in on a loopback port, and the adapter pointed at it.
async fn stand_in(since: Millis) -> (Arc<Mutex<Service>>, InstanceRefreshRollout) {
    let service = Arc::new(Mutex::new(Service::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = service.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = svc.clone();
            tokio::spawn(async move {
                let handle = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let svc = svc.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let form: BTreeMap<String, String> =
                                url_form(&String::from_utf8_lossy(&body));
                            let (status, xml) = svc.lock().unwrap().answer(form);
                            Ok::<_, hyper::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "text/xml")
                                    .body(Full::new(Bytes::from(xml)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, handle)
                    .await;
            });
        }
    });
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
            checkpoints: vec![20, 50, 100],
            checkpoint_delay_s: 300,
            alarms: vec!["web-5xx".into(), "web-p99".into()],
        },
        since,
    );
    (service, rollout)
}

/// `a=1&b=x%20y` → {a: 1, b: "x y"}.
fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
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
    assert_eq!(rollout.state("8").await.unwrap(), RolloutState::NotStarted);
    rollout.start("8").await.unwrap();
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
    rollout.start("8").await.unwrap();
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
        let state = rollout.state("8").await.unwrap();
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
        rollout.state("8").await.unwrap(),
        RolloutState::InProgress {
            percent: Some(40),
            detail: String::new()
        }
    );
}

#[tokio::test]
async fn a_second_start_of_the_same_refresh_is_taken_as_done() {
    let (service, rollout) = stand_in(SINCE).await;
    rollout.start("8").await.unwrap();
    rollout.start("8").await.unwrap();
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
    rollout.start("8").await.unwrap();
    set(&service, "InProgress", "", 30);
    rollout.revert().await.unwrap();
    assert!(matches!(
        rollout.state("8").await.unwrap(),
        RolloutState::RollingBack { .. }
    ));
    set(&service, "RollbackSuccessful", "rollback requested", 0);
    let state = rollout.state("8").await.unwrap();
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
    rollout.start("8").await.unwrap();
    set(&service, "Successful", "", 100);
    // A gate fails during the bake: the refresh is over, so no rollback API.
    assert_eq!(
        react(&rollout.state("8").await.unwrap(), true, false),
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
        rollout.state("8").await.unwrap(),
        RolloutState::RollingBack { .. }
    ));
    set(&service, "Successful", "", 100);
    assert!(matches!(
        rollout.state("8").await.unwrap(),
        RolloutState::RolledBack { .. }
    ));
}

#[tokio::test]
async fn refreshes_from_before_the_deployment_are_history() {
    let (service, rollout) = stand_in(SINCE + 3_600_000).await;
    service.lock().unwrap().refreshes.push(Refresh {
        id: "ir-old".into(),
        status: "Successful",
        reason: String::new(),
        percent: 100,
        version: "8".into(),
        start: "2026-11-22T20:00:00Z".into(),
    });
    assert_eq!(rollout.state("8").await.unwrap(), RolloutState::NotStarted);
}
