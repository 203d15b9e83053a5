//! The CloudFront router: a static site's primary distribution serves
//! blue's prefix; a staging distribution serves green's, and a continuous
//! deployment policy sends it a share of the primary's requests.
//!
//! CloudFront's blue/green primitive is not symmetric the way two target
//! groups are: the primary is the one users' DNS names, and green's share
//! through the staging distribution is at most 15% ("Quotas and other
//! considerations for continuous deployment", CloudFront Developer Guide).
//! So weights map onto it like this, whichever slot is which:
//!
//! - the slot with the larger share is the one the primary's origin path
//!   serves; when that has to change, promoting the staging config
//!   (`UpdateDistributionWithStagingConfig`) moves it if the staging
//!   distribution already serves that slot, else the primary's origin path
//!   is set directly (the way back after a promotion);
//! - the other slot's share, 0 to 15%, is the policy's `SingleWeight`,
//!   with the staging distribution's origin path on that slot's prefix; a
//!   share of 0 disables the policy.
//!
//! The staging distribution is made once with `CopyDistribution` from the
//! primary and updated after; the policy is created once and attached to
//! the primary. Which prefix is which slot's is read from the bucket
//! ([`crate::aws::s3::fleet`]). Every write carries the `ETag` its read
//! returned (`IfMatch`), so a change made meanwhile by someone else fails
//! (`PreconditionFailed`, retried from a fresh read) rather than being
//! overwritten; a distribution written is waited for until `Deployed`; and
//! the weights are read back at the end.

mod distribution;
mod router;

pub use router::CloudFrontRouter;

use crate::aws::s3::{fleet::Served, SiteBucket};
use crate::aws::Aws;
use crate::ports::PortError;
use async_trait::async_trait;

/// A site's primary distribution, as the S3 fleet asks it what blue is.
#[derive(Debug, Clone)]
pub struct Primary {
    api: distribution::Distributions,
    id: String,
    site: SiteBucket,
}

impl Primary {
    /// The distribution `id`, serving revisions of `site`.
    pub fn new(aws: &Aws, id: String, site: SiteBucket) -> Primary {
        Primary {
            api: distribution::Distributions::new(aws),
            id,
            site,
        }
    }
}

#[async_trait]
impl Served for Primary {
    async fn served_revision(&self) -> Result<Option<String>, PortError> {
        let config = self.api.config(&self.id).await?.config;
        Ok(self.site.revision_at(&router::served_path(&config)))
    }
}

/// The origin paths `primary` and, when a continuous deployment policy
/// joins one to it, its staging distribution serve: what a prune must
/// keep. A distribution that does not exist is `NotFound`, naming it.
pub async fn served_paths(aws: &Aws, primary: &str) -> Result<Vec<String>, PortError> {
    let api = distribution::Distributions::new(aws);
    let config = api.config(primary).await?.config;
    let mut paths = vec![router::served_path(&config)];
    if let Some(policy) = &config.continuous_deployment_policy_id {
        let domain = api
            .policy(policy)
            .await?
            .config
            .staging_distribution_dns_names
            .and_then(|n| n.items)
            .and_then(|i| i.into_iter().next());
        if let Some(id) = match domain {
            Some(d) => api.staging_named(&d).await?,
            None => None,
        } {
            paths.push(router::served_path(&api.config(&id).await?.config));
        }
    }
    Ok(paths)
}

/// Where CloudFront's metrics, and so the alarms on them, are: the
/// CloudWatch API serves them from US East (N. Virginia) only, with the
/// dimension `Region = Global` (CloudFront Developer Guide, "Get metrics by
/// using the Amazon CloudWatch API", programming-cloudwatch-metrics.html).
pub const METRICS_REGION: &str = "us-east-1";

/// The largest share of requests a staging distribution can have.
pub use crate::config::CLOUDFRONT_MAX_WEIGHT as MAX_WEIGHT;
