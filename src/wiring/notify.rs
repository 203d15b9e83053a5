//! The notification channels of a config's `[notify]`: the one place that
//! maps a destination to its adapter.

use crate::config::{Config, Destination};
use crate::events::Milestone;
use crate::notify::{webhook, Channel};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The channels of `config`'s `[notify]`. `aws` builds SNS and EventBridge
/// clients (`None`, on the local and simulated providers: they are loaded
/// here, from `cloud` and the default chain, when a target needs them). A webhook whose URL is not set in this process is
/// left out; the commands that drive a deployment refuse it beforehand
/// (`NotifyConfig::check`).
pub async fn channels(
    config: &Config,
    aws: Option<&crate::aws::Aws>,
    cloud: &super::Cloud,
) -> Vec<(BTreeSet<Milestone>, Arc<dyn Channel>)> {
    let targets = &config.notify.targets;
    let loaded = match (aws, targets.iter().any(|t| t.to.is_aws())) {
        (None, true) => {
            Some(crate::aws::Aws::load(cloud.region.clone(), cloud.profile.clone()).await)
        }
        _ => None,
    };
    let aws = aws.or(loaded.as_ref());
    let mut out = vec![];
    for t in targets {
        let channel: Arc<dyn Channel> = match (&t.to, aws) {
            (Destination::Sns { topic_arn }, Some(aws)) => {
                Arc::new(crate::aws::notify::SnsTopic::new(aws, topic_arn))
            }
            (Destination::EventBridge { bus }, Some(aws)) => {
                Arc::new(crate::aws::notify::EventBus::new(aws, bus))
            }
            (
                Destination::Webhook {
                    url: Some(url),
                    label,
                    format,
                },
                _,
            ) => Arc::new(webhook::Webhook::new(url.clone(), label, *format)),
            _ => continue,
        };
        out.push((t.milestones.clone(), channel));
    }
    out
}
