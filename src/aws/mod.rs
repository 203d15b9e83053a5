//! The AWS adapters of the ports, on the official Rust SDK.
//!
//! One module per AWS service:
//!
//! - [`elb`]: the ALB router (listener default action or one rule, weighted
//!   forward) and target health;
//! - [`route53`]: the Route 53 router (two weighted records) and its TXT ledger;
//! - [`cloudfront`]: the CloudFront router (a primary distribution, its
//!   staging copy and a continuous deployment policy) of a static site;
//! - [`s3`]: a static site's revisions in a bucket: published, carried,
//!   pruned; and the site as a fleet, each slot a revision's prefix;
//! - [`dynamodb`]: the deployment record in a DynamoDB table (conditional
//!   writes: the lock of ALB routers, and of Route 53 ones that name a table);
//! - [`ecs`]: the ECS fleet (a service per slot, cloned from blue) and its
//!   rolling update in place;
//! - [`autoscaling`]: the Auto Scaling fleet (a group per slot, cloned from
//!   blue) and its rolling update (an instance refresh);
//! - [`cloudwatch`]: the alarm gate (one batched `DescribeAlarms` per poll);
//! - [`discover`]: what `teal init` reads of a running service, read-only;
//! - [`notify`]: notification channels: an SNS topic, an EventBridge bus;
//! - [`sdk`]: the SDK set-up, the call counter and error classification;
//! - [`pace`]: the client-side rate limit, a token bucket per API family;
//! - [`shared`]: the reads a release's members share (alarms, listeners and
//!   rules), batched across them;
//! - [`sts`]: the caller's identity, recorded with its commands;
//! - [`tags`]: the tag names teal writes;
//! - [`wiring`]: the ports of a config, from a router part and a fleet part.
//!
//! Credentials and region come from the default chain (`--profile`, `--region`,
//! `AWS_ENDPOINT_URL` and friends). Every call is counted per operation
//! ([`ApiCalls`]) for the final summary.

pub mod autoscaling;
pub mod cloudfront;
pub mod cloudwatch;
pub mod discover;
pub mod dynamodb;
pub mod ecs;
pub mod elb;
pub mod notify;
pub mod pace;
pub mod route53;
pub mod s3;
pub mod sdk;
pub mod shared;
pub mod sts;
pub mod tags;
pub mod wiring;

pub use sdk::{error_code, port_error, ApiCalls, Aws, CallCounts, CALL_ATTEMPT_TIMEOUT};

use crate::ports::{ErrorKind, PortError};

/// A fleet already in green's slot when provisioning: fine if it is this
/// revision (an earlier attempt of the same call), or carries our name and no
/// tag yet (tagging is not atomic with creation); otherwise refused.
pub(crate) fn existing_is_ours(
    op: &'static str,
    slot: crate::model::Slot,
    name: &str,
    tagged: Option<&str>,
    ours_by_name: bool,
    revision: &str,
) -> Result<(), PortError> {
    match tagged {
        Some(r) if r == revision => Ok(()),
        None if ours_by_name => Ok(()),
        other => Err(PortError::new(
            op,
            ErrorKind::Invalid,
            format!(
                "slot {slot} already has {name} ({})",
                other.unwrap_or("no revision tag")
            ),
        )),
    }
}
