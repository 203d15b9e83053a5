//! Notifications on moto with the real SDK: an SNS topic with an SQS queue
//! subscribed, and an EventBridge rule with an SQS target, receive a canary
//! that waits for approval, is approved from a second process, and
//! succeeds; and one that an alarm rolls back. The test reads both queues
//! and checks the kinds, their order and what each says.

#[path = "support/aws.rs"]
mod support;

use aws_sdk_cloudwatch::types::StateValue;
use serde_json::Value;
use std::time::Duration;
use support::*;

/// A canary that waits for approval after its first step.
const APPROVAL_CANARY: &str = r#"steps = [{ weight = 10, bake = "1s", approve = true }, { weight = 100, bake = "1s" }]
keep_alive = "1s"
poll = "1s"
green_healthy_timeout = "30s""#;

/// A canary whose first bake outlasts the test: only the alarm moves it.
const LONG_CANARY: &str = r#"steps = [{ weight = 10, bake = "10m" }, { weight = 100, bake = "1s" }]
keep_alive = "1s"
poll = "1s"
green_healthy_timeout = "30s""#;

struct Queues {
    sqs: aws_sdk_sqs::Client,
    sns_queue: String,
    bus_queue: String,
    topic: String,
}

/// A topic with a queue subscribed, and a rule on the default bus that sends
/// `service`'s teal events to a second queue.
async fn queues(m: &Moto, service: &str) -> Queues {
    let sdk = sdk(m).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let queue = |name: String| {
        let sqs = sqs.clone();
        async move {
            let url = sqs
                .create_queue()
                .queue_name(name)
                .send()
                .await
                .expect("CreateQueue")
                .queue_url()
                .unwrap()
                .to_string();
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("GetQueueAttributes")
                .attributes()
                .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
                .clone();
            (url, arn)
        }
    };
    let (sns_queue, sns_queue_arn) = queue(unique("teal-sns-")).await;
    let (bus_queue, bus_queue_arn) = queue(unique("teal-bus-")).await;
    let topic = sns
        .create_topic()
        .name(unique("teal-deploys-"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .unwrap()
        .to_string();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(sns_queue_arn)
        .send()
        .await
        .expect("Subscribe");
    let rule = unique("teal-rule-");
    events
        .put_rule()
        .name(&rule)
        .event_pattern(
            serde_json::json!({
                "source": [teal::aws::notify::SOURCE],
                "detail-type": [teal::aws::notify::DETAIL_TYPE],
                "detail": {"service": [service]}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(bus_queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutTargets");
    Queues {
        sqs,
        sns_queue,
        bus_queue,
        topic,
    }
}

/// Every message on `queue`, in the order SQS gives them.
async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<Value> {
    let mut out = vec![];
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let msgs = got.messages();
        if msgs.is_empty() {
            return out;
        }
        for msg in msgs {
            out.push(serde_json::from_str(msg.body().unwrap()).expect("a JSON body"));
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(msg.receipt_handle().unwrap())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// The notifications on both queues: SNS's envelopes opened (their message
/// attributes checked against the message), EventBridge's events' details
/// (their source and detail-type checked).
async fn received(q: &Queues) -> (Vec<Value>, Vec<Value>) {
    let from_sns: Vec<Value> = drain(&q.sqs, &q.sns_queue)
        .await
        .into_iter()
        .map(|envelope| {
            assert_eq!(envelope["TopicArn"], q.topic.as_str());
            let n: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            let attr = |k: &str| envelope["MessageAttributes"][k]["Value"].clone();
            assert_eq!(attr("kind"), n["kind"], "{envelope}");
            assert_eq!(attr("service"), n["service"], "{envelope}");
            assert_eq!(attr("deployment"), n["deployment"], "{envelope}");
            assert_eq!(envelope["Subject"], n["text"], "{envelope}");
            n
        })
        .collect();
    let from_bus: Vec<Value> = drain(&q.sqs, &q.bus_queue)
        .await
        .into_iter()
        .map(|event| {
            assert_eq!(event["source"], teal::aws::notify::SOURCE);
            assert_eq!(event["detail-type"], teal::aws::notify::DETAIL_TYPE);
            event["detail"].clone()
        })
        .collect();
    (from_sns, from_bus)
}

fn kinds(ns: &[Value]) -> Vec<&str> {
    ns.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

fn with_notify(cfg: &std::path::Path, topic: &str) {
    let mut text = std::fs::read_to_string(cfg).unwrap();
    text.push_str(&format!(
        "\n[[notify.sns]]\ntopic_arn = \"{topic}\"\n\n[[notify.eventbridge]]\nbus = \"default\"\n"
    ));
    std::fs::write(cfg, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_approved_by_a_person_is_told_on_sns_and_eventbridge() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let _ecs = register_targets_like_ecs(&c, &f, None);
    let q = queues(&m, &f.name).await;
    let (_dir, cfg) = config(&f, APPROVAL_CANARY);
    with_notify(&cfg, &q.topic);
    let args = [
        "deploy",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        "registry.example/app:2",
        "--output",
        "json",
    ];
    let deploy = teal(&m, &args).spawn().unwrap();

    // The step bakes, then waits for a person.
    let waiting = async {
        loop {
            let s = status_json(&m, &cfg).await;
            if s["hold"]["hold"] == "approval" {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the deployment waits for approval within a minute");
    let (approve, _) = run_teal(
        &m,
        &[
            "approve",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            "json",
        ],
        0,
    )
    .await;
    let out = deploy.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (sns, bus) = received(&q).await;
    let want = [
        "started",
        "step",
        "awaiting_approval",
        "approved",
        "step",
        "succeeded",
    ];
    assert_eq!(kinds(&sns), want);
    assert_eq!(kinds(&bus), want);
    assert_eq!(sns, bus, "SNS and EventBridge carry the same notifications");
    let by = sns[3]["by"].as_str().unwrap();
    // The approver's AWS identity (STS GetCallerIdentity; moto's user).
    assert!(
        by.starts_with("arn:aws:"),
        "approved by {by}; approve said:\n{approve}"
    );
    assert!(approve.contains("GetCallerIdentity"), "{approve}");
    let wait = &sns[2];
    assert_eq!(wait["step"], 1);
    assert_eq!(
        wait["weights"],
        serde_json::json!({"blue": 90, "green": 10})
    );
    assert_eq!(
        wait["commands"]["approve"],
        format!("teal approve --config {}", cfg.display())
    );
    assert_eq!(sns[4]["weights"]["green"], 100);
    assert_eq!(sns[5]["revision"], "2", "the image's tag");
    assert_eq!(sns[5]["commands"]["rollback"], Value::Null, "it has ended");
    let calls = api_calls_line(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(calls["calls"]["Publish"], 6, "{calls}");
    assert_eq!(calls["calls"]["PutEvents"], 6, "{calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_rolled_back_by_an_alarm_is_told_why() {
    let Some(m) = moto() else { return };
    let c = clients(&m).await;
    let f = fixture(&c, Forward::Weighted).await;
    let _ecs = register_targets_like_ecs(&c, &f, None);
    let q = queues(&m, &f.name).await;
    let (_dir, cfg) = config(&f, LONG_CANARY);
    with_notify(&cfg, &q.topic);
    let deploy = spawn_deploy_app_2(&m, &cfg);
    wait_for_weights(&c, &f, (90, 10)).await;
    set_alarm(&c, &f.alarms[0], StateValue::Alarm).await;
    let out = deploy.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(weights(&c, &f).await, (100, 0));

    let (sns, bus) = received(&q).await;
    let want = ["started", "step", "rolling_back", "rolled_back"];
    assert_eq!(kinds(&sns), want);
    assert_eq!(kinds(&bus), want);
    for n in &sns[2..] {
        let reason = n["reason"].as_str().unwrap();
        assert!(reason.contains(&f.alarms[0]), "{n}");
    }
    assert_eq!(
        sns[3]["weights"],
        serde_json::json!({"blue": 100, "green": 0})
    );
}
