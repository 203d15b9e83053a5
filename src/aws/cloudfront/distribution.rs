//! CloudFront's distributions and continuous deployment policies, read with
//! their `ETag`s and written with them (`IfMatch`).

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::ports::{ErrorKind, PortError};
use aws_sdk_cloudfront::types::{
    ContinuousDeploymentPolicyConfig, ContinuousDeploymentPolicyType,
    ContinuousDeploymentSingleHeaderConfig, ContinuousDeploymentSingleWeightConfig,
    DistributionConfig, DistributionSummary, SessionStickinessConfig, StagingDistributionDnsNames,
    TrafficConfig,
};
use aws_sdk_cloudfront::Client;
use std::sync::Arc;
use std::time::Duration;

/// One distribution's config as read, with the `ETag` a write must carry.
#[derive(Debug, Clone)]
pub struct Read<T> {
    /// The resource's id.
    pub id: String,
    /// What it is.
    pub config: T,
    /// Its version, for `IfMatch`.
    pub etag: String,
}

/// How long a written distribution is waited for: CloudFront takes minutes
/// to deploy a change to every edge location. Polled after 1 s, the wait
/// doubling up to [`DEPLOYED_POLL`].
const DEPLOYED_WAIT: Duration = Duration::from_secs(30 * 60);
const DEPLOYED_POLL: Duration = Duration::from_secs(15);

/// The CloudFront API, as teal uses it.
#[derive(Debug, Clone)]
pub struct Distributions {
    client: Client,
    calls: Arc<ApiCalls>,
}

/// A CloudFront error for `op`, made plain: a concurrent change
/// (`PreconditionFailed`: the `ETag` is stale) is tried again from a fresh
/// read; a missing distribution names itself.
fn plain(id: &str, e: PortError) -> PortError {
    if e.message.contains("PreconditionFailed") || e.message.contains("InvalidIfMatchVersion") {
        PortError::new(
            e.op,
            ErrorKind::Transient,
            format!(
                "distribution {id} changed while teal wrote it; reading it again ({})",
                e.message
            ),
        )
    } else if e.message.contains("NoSuchDistribution") {
        PortError::new(
            e.op,
            ErrorKind::NotFound,
            format!("CloudFront has no distribution {id:?} ({})", e.message),
        )
    } else {
        e
    }
}

impl Distributions {
    /// The CloudFront API of `aws`'s account (a global service).
    pub fn new(aws: &Aws) -> Distributions {
        Distributions {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
        }
    }

    /// A distribution's config (`GetDistributionConfig`).
    pub async fn config(&self, id: &str) -> Result<Read<DistributionConfig>, PortError> {
        let out = aws_call!(
            self.calls,
            "GetDistributionConfig",
            self.client.get_distribution_config().id(id).send()
        )
        .map_err(|e| plain(id, e))?;
        Ok(Read {
            id: id.to_string(),
            config: out
                .distribution_config
                .ok_or_else(|| missing(id, "DistributionConfig"))?,
            etag: out.e_tag.ok_or_else(|| missing(id, "ETag"))?,
        })
    }

    /// Replace a distribution's config (`UpdateDistribution`), then wait
    /// until it is deployed.
    pub async fn update(&self, read: &Read<DistributionConfig>) -> Result<(), PortError> {
        aws_call!(
            self.calls,
            "UpdateDistribution",
            self.client
                .update_distribution()
                .id(&read.id)
                .if_match(&read.etag)
                .distribution_config(read.config.clone())
                .send()
        )
        .map_err(|e| plain(&read.id, e))?;
        self.deployed(&read.id).await
    }

    /// A staging copy of `primary` (`CopyDistribution`), deployed; its id
    /// and domain name.
    pub async fn copy(
        &self,
        primary: &Read<DistributionConfig>,
        caller_reference: &str,
    ) -> Result<(String, String), PortError> {
        let out = aws_call!(
            self.calls,
            "CopyDistribution",
            self.client
                .copy_distribution()
                .primary_distribution_id(&primary.id)
                .staging(true)
                .enabled(true)
                .if_match(&primary.etag)
                .caller_reference(caller_reference)
                .send()
        )
        .map_err(|e| plain(&primary.id, e))?;
        let d = out
            .distribution
            .ok_or_else(|| missing(&primary.id, "Distribution"))?;
        self.deployed(&d.id).await?;
        Ok((d.id, d.domain_name))
    }

    /// Copy the staging distribution's config onto the primary
    /// (`UpdateDistributionWithStagingConfig`: the primary keeps its
    /// aliases and policy), then wait until it is deployed.
    pub async fn promote(
        &self,
        primary: &Read<DistributionConfig>,
        staging: &Read<DistributionConfig>,
    ) -> Result<(), PortError> {
        aws_call!(
            self.calls,
            "UpdateDistributionWithStagingConfig",
            self.client
                .update_distribution_with_staging_config()
                .id(&primary.id)
                .staging_distribution_id(&staging.id)
                // "The current versions (ETag values) of both primary and
                // staging distributions", in that order (API reference).
                .if_match(format!("{}, {}", primary.etag, staging.etag))
                .send()
        )
        .map_err(|e| plain(&primary.id, e))?;
        self.deployed(&primary.id).await
    }

    /// Poll `GetDistribution` until its status is `Deployed`.
    async fn deployed(&self, id: &str) -> Result<(), PortError> {
        let deadline = tokio::time::Instant::now() + DEPLOYED_WAIT;
        let mut wait = Duration::from_secs(1);
        loop {
            let out = aws_call!(
                self.calls,
                "GetDistribution",
                self.client.get_distribution().id(id).send()
            )
            .map_err(|e| plain(id, e))?;
            let status = out.distribution.map(|d| d.status).unwrap_or_default();
            if status == "Deployed" {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PortError::new(
                    "GetDistribution",
                    ErrorKind::Transient,
                    format!(
                        "distribution {id} is still {status} after {}",
                        humantime::format_duration(DEPLOYED_WAIT)
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(DEPLOYED_POLL);
        }
    }

    /// Every staging distribution's summary (`ListDistributions`, every page).
    async fn stagings(&self) -> Result<Vec<DistributionSummary>, PortError> {
        let (mut found, mut marker) = (Vec::new(), None);
        loop {
            let out = aws_call!(
                self.calls,
                "ListDistributions",
                self.client
                    .list_distributions()
                    .set_marker(marker.take())
                    .send()
            )?;
            let Some(list) = out.distribution_list else {
                return Ok(found);
            };
            found.extend(
                list.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|d| d.staging),
            );
            match list.next_marker {
                Some(m) if list.is_truncated => marker = Some(m),
                _ => return Ok(found),
            }
        }
    }

    /// The id of the staging distribution whose domain name is `domain`.
    pub async fn staging_named(&self, domain: &str) -> Result<Option<String>, PortError> {
        Ok(self
            .stagings()
            .await?
            .into_iter()
            .find(|d| d.domain_name == domain)
            .map(|d| d.id))
    }

    /// A staging distribution teal copied from `primary` (its caller
    /// reference starts [`copy_reference`]'s way), if one exists: a copy a
    /// process made before it died, or before a timeout hid the answer,
    /// is taken up rather than made again. Reads the config of each staging
    /// distribution listed.
    pub async fn copy_of(&self, primary: &str) -> Result<Option<(String, String)>, PortError> {
        let prefix = copy_reference(primary, "");
        for d in self.stagings().await? {
            if self
                .config(&d.id)
                .await?
                .config
                .caller_reference
                .starts_with(&prefix)
            {
                return Ok(Some((d.id, d.domain_name)));
            }
        }
        Ok(None)
    }

    /// The policy that sends requests to `staging_domain`, if one exists
    /// (`ListContinuousDeploymentPolicies`, every page). CloudFront keeps
    /// one per staging distribution (a second is `StagingDistributionInUse`,
    /// CreateContinuousDeploymentPolicy's API reference), so one created by
    /// a process that died before attaching it must be taken up.
    pub async fn policy_for(&self, staging_domain: &str) -> Result<Option<String>, PortError> {
        let mut marker = None;
        loop {
            let out = aws_call!(
                self.calls,
                "ListContinuousDeploymentPolicies",
                self.client
                    .list_continuous_deployment_policies()
                    .set_marker(marker.take())
                    .send()
            )?;
            let Some(list) = out.continuous_deployment_policy_list else {
                return Ok(None);
            };
            let found = list
                .items()
                .iter()
                .filter_map(|s| s.continuous_deployment_policy.as_ref())
                .find(|p| {
                    p.continuous_deployment_policy_config
                        .as_ref()
                        .and_then(|c| c.staging_distribution_dns_names.as_ref())
                        .and_then(|n| n.items.as_ref())
                        .is_some_and(|i| i.iter().any(|d| d == staging_domain))
                });
            if let Some(p) = found {
                return Ok(Some(p.id.clone()));
            }
            match list.next_marker {
                Some(m) => marker = Some(m),
                None => return Ok(None),
            }
        }
    }

    /// A continuous deployment policy's config (`GetContinuousDeploymentPolicyConfig`).
    pub async fn policy(
        &self,
        id: &str,
    ) -> Result<Read<ContinuousDeploymentPolicyConfig>, PortError> {
        let out = aws_call!(
            self.calls,
            "GetContinuousDeploymentPolicyConfig",
            self.client
                .get_continuous_deployment_policy_config()
                .id(id)
                .send()
        )?;
        Ok(Read {
            id: id.to_string(),
            config: out
                .continuous_deployment_policy_config
                .ok_or_else(|| missing(id, "ContinuousDeploymentPolicyConfig"))?,
            etag: out.e_tag.ok_or_else(|| missing(id, "ETag"))?,
        })
    }

    /// A new policy sending `staging_domain` the requests `traffic` says; its id.
    pub async fn create_policy(
        &self,
        staging_domain: &str,
        traffic: &Traffic,
    ) -> Result<String, PortError> {
        let config = policy_config(staging_domain, traffic)?;
        let out = aws_call!(
            self.calls,
            "CreateContinuousDeploymentPolicy",
            self.client
                .create_continuous_deployment_policy()
                .continuous_deployment_policy_config(config)
                .send()
        )?;
        out.continuous_deployment_policy
            .map(|p| p.id)
            .ok_or_else(|| missing(staging_domain, "ContinuousDeploymentPolicy"))
    }

    /// Replace a policy's config (`UpdateContinuousDeploymentPolicy`).
    pub async fn update_policy(
        &self,
        read: &Read<ContinuousDeploymentPolicyConfig>,
    ) -> Result<(), PortError> {
        aws_call!(
            self.calls,
            "UpdateContinuousDeploymentPolicy",
            self.client
                .update_continuous_deployment_policy()
                .id(&read.id)
                .if_match(&read.etag)
                .continuous_deployment_policy_config(read.config.clone())
                .send()
        )
        .map(|_| ())
        .map_err(|e| plain(&read.id, e))
    }
}

/// The caller reference of teal's staging copy of `primary` made at `stamp`:
/// unique per request, as `CopyDistribution` requires, and telling teal's
/// copies of a primary apart from any other ([`Distributions::copy_of`]).
pub fn copy_reference(primary: &str, stamp: &str) -> String {
    format!("teal-{primary}-{stamp}")
}

/// Which requests a policy sends the staging distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// `share` (0.0..=0.15) of all requests (`SingleWeight`), sticky
    /// sessions if asked (CloudFront's shortest idle time, 300 s, an hour
    /// at most).
    Weight {
        /// The fraction of requests.
        share: f32,
        /// Whether a viewer stays on the side that first answered it.
        sticky: bool,
    },
    /// Only the requests carrying this header with the value
    /// [`TEST_HEADER_VALUE`] (`SingleHeader`).
    Header(String),
}

/// The test header's value that sends a request to green.
pub const TEST_HEADER_VALUE: &str = "green";

/// An enabled policy's config sending `staging_domain` the requests `traffic` says.
pub fn policy_config(
    staging_domain: &str,
    traffic: &Traffic,
) -> Result<ContinuousDeploymentPolicyConfig, PortError> {
    let invalid = |e: aws_sdk_cloudfront::error::BuildError| {
        PortError::new(
            "CreateContinuousDeploymentPolicy",
            ErrorKind::Invalid,
            e.to_string(),
        )
    };
    let traffic = match traffic {
        Traffic::Weight { share, sticky } => {
            let stickiness = match sticky {
                true => Some(
                    SessionStickinessConfig::builder()
                        .idle_ttl(300)
                        .maximum_ttl(3600)
                        .build()
                        .map_err(invalid)?,
                ),
                false => None,
            };
            TrafficConfig::builder()
                .r#type(ContinuousDeploymentPolicyType::SingleWeight)
                .single_weight_config(
                    ContinuousDeploymentSingleWeightConfig::builder()
                        .weight(*share)
                        .set_session_stickiness_config(stickiness)
                        .build()
                        .map_err(invalid)?,
                )
                .build()
                .map_err(invalid)?
        }
        Traffic::Header(name) => TrafficConfig::builder()
            .r#type(ContinuousDeploymentPolicyType::SingleHeader)
            .single_header_config(
                ContinuousDeploymentSingleHeaderConfig::builder()
                    .header(name)
                    .value(TEST_HEADER_VALUE)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?,
    };
    ContinuousDeploymentPolicyConfig::builder()
        .staging_distribution_dns_names(
            StagingDistributionDnsNames::builder()
                .quantity(1)
                .items(staging_domain)
                .build()
                .map_err(invalid)?,
        )
        .enabled(true)
        .traffic_config(traffic)
        .build()
        .map_err(invalid)
}

fn missing(id: &str, what: &str) -> PortError {
    PortError::new(
        "cloudfront",
        ErrorKind::Transient,
        format!("CloudFront's answer about {id} has no {what}"),
    )
}
