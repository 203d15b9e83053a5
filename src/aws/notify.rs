//! Notification channels on AWS: an SNS topic (`Publish`) and an EventBridge
//! bus (`PutEvents`). Each client is made for the region its ARN names (SNS
//! publishes only in the topic's region), else the configured one.
//!
//! - SNS: the message is the notification's JSON; its subject the one-line
//!   text; message attributes `kind`, `service` and `deployment` (String), for
//!   subscription filter policies. A FIFO topic (`.fifo`) gets the service as
//!   its message group, so one service's notifications keep their order.
//! - EventBridge: one entry, `source` [`SOURCE`], `detail-type`
//!   [`DETAIL_TYPE`], `detail` the notification's JSON.

use crate::aws::Aws;
use crate::aws_call;
use crate::notify::{Channel, Notification};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sns::types::MessageAttributeValue;
use std::sync::Arc;

/// The EventBridge `source` of teal's events.
pub const SOURCE: &str = "teal";
/// The EventBridge `detail-type` of teal's events (rules match on it and on
/// `detail.kind`).
pub const DETAIL_TYPE: &str = "teal deployment notification";

/// The region an ARN names, if it names one.
fn region_of(arn: &str) -> Option<String> {
    arn.strip_prefix("arn:")
        .and_then(|r| r.split(':').nth(2))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// An SNS topic.
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    calls: Arc<crate::aws::ApiCalls>,
    topic_arn: String,
}

impl SnsTopic {
    /// Publish to `topic_arn`.
    pub fn new(aws: &Aws, topic_arn: &str) -> SnsTopic {
        let mut conf = aws_sdk_sns::config::Builder::from(&aws.sdk);
        if let Some(r) = region_of(topic_arn) {
            conf = conf.region(aws_sdk_sns::config::Region::new(r));
        }
        SnsTopic {
            client: aws_sdk_sns::Client::from_conf(conf.build()),
            calls: aws.calls.clone(),
            topic_arn: topic_arn.to_string(),
        }
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

/// An SNS subject: ASCII, no line breaks, at most 100 characters.
fn subject(text: &str) -> String {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    match ascii.len() > 100 {
        true => format!("{}...", &ascii[..97]),
        false => ascii,
    }
}

#[async_trait::async_trait]
impl Channel for SnsTopic {
    fn describe(&self) -> String {
        format!("SNS topic {}", self.topic_arn)
    }

    async fn send(&self, n: &Notification) -> Result<(), String> {
        let message = serde_json::to_string(n).expect("json");
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(&n.text))
            .message(message)
            .message_attributes("kind", attribute(n.kind.name()))
            .message_attributes("service", attribute(&n.service))
            .message_attributes("deployment", attribute(&n.deployment));
        if self.topic_arn.ends_with(".fifo") {
            publish = publish
                .message_group_id(&n.service)
                .message_deduplication_id(format!("{}-{}-{}", n.deployment, n.kind.name(), n.at));
        }
        aws_call!(self.calls, "Publish", publish.send())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// An EventBridge bus.
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    calls: Arc<crate::aws::ApiCalls>,
    bus: String,
}

impl EventBus {
    /// Put events on `bus` (a name or ARN).
    pub fn new(aws: &Aws, bus: &str) -> EventBus {
        let mut conf = aws_sdk_eventbridge::config::Builder::from(&aws.sdk);
        if let Some(r) = region_of(bus) {
            conf = conf.region(aws_sdk_eventbridge::config::Region::new(r));
        }
        EventBus {
            client: aws_sdk_eventbridge::Client::from_conf(conf.build()),
            calls: aws.calls.clone(),
            bus: bus.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Channel for EventBus {
    fn describe(&self) -> String {
        format!("EventBridge bus {}", self.bus)
    }

    async fn send(&self, n: &Notification) -> Result<(), String> {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(serde_json::to_string(n).expect("json"))
            .event_bus_name(&self.bus)
            .build();
        let out = aws_call!(
            self.calls,
            "PutEvents",
            self.client.put_events().entries(entry).send()
        )
        .map_err(|e| e.to_string())?;
        // PutEvents answers 200 with the entries it refused.
        match out.failed_entry_count() {
            0 => Ok(()),
            _ => {
                let e = out.entries().first();
                Err(format!(
                    "PutEvents refused the entry: {}: {}",
                    e.and_then(|e| e.error_code()).unwrap_or("?"),
                    e.and_then(|e| e.error_message()).unwrap_or("")
                ))
            }
        }
    }
}
