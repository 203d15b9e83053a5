//! The router: weights read from, and written to, a primary distribution,
//! its staging copy and the policy between them (see the module above).

use super::distribution::{copy_reference, policy_config, Distributions, Read, Traffic};
use super::MAX_WEIGHT;
use crate::analysis::spec::LiveValues;
use crate::aws::s3::fleet::{SlotRevisions, BEFORE_TEAL};
use crate::aws::s3::SiteBucket;
use crate::aws::Aws;
use crate::engine::Plan;
use crate::model::{Slot, SlotWeights};
use crate::ports::{Checks, ErrorKind, PortError, Router};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    ContinuousDeploymentPolicyConfig, ContinuousDeploymentPolicyType, DistributionConfig,
    HttpVersion,
};
use std::sync::Mutex;

/// The CloudFront router.
#[derive(Debug)]
pub struct CloudFrontRouter {
    api: Distributions,
    primary: String,
    site: SiteBucket,
    sticky: bool,
    /// The staging distribution's id, once found or made.
    staging: Mutex<Option<String>>,
    /// `{distribution}` of each slot, for canary analysis: the primary's id
    /// for the slot it serves, the staging one's for the other.
    live: Option<LiveValues>,
    /// The test header, when green takes test traffic first.
    test_header: Option<String>,
}

/// `{distribution}` of a slot no distribution serves yet (before the
/// first staging copy): a dimension value with no data, so the analysis
/// waits for points instead of failing to build its query.
const NO_DISTRIBUTION: &str = "none";

/// What the router reads: the primary, and the staging side when a policy
/// joins one to it.
struct Pair {
    primary: Read<DistributionConfig>,
    staged: Option<Staged>,
}

struct Staged {
    policy: Read<ContinuousDeploymentPolicyConfig>,
    /// The staging distribution's domain name, as the policy names it.
    domain: String,
    /// `None` when no staging distribution has that name (deleted by hand).
    distribution: Option<Read<DistributionConfig>>,
}

impl CloudFrontRouter {
    /// The router of `primary` (a distribution id), serving the revisions of `site`.
    pub fn new(aws: &Aws, primary: String, site: SiteBucket, sticky: bool) -> CloudFrontRouter {
        CloudFrontRouter {
            api: Distributions::new(aws),
            primary,
            site,
            sticky,
            staging: Mutex::new(None),
            live: None,
            test_header: None,
        }
    }

    /// Send green, before any production share, the requests carrying
    /// `header: green` (a `SingleHeader` policy), as a test listener would.
    pub fn with_test_header(mut self, header: Option<String>) -> CloudFrontRouter {
        self.test_header = header;
        self
    }

    /// Which slot the test header reaches: the staging distribution's while
    /// an enabled `SingleHeader` policy sends it those requests, else the
    /// primary's (every request goes there or is weighted like any other).
    fn test_weights_of(
        &self,
        pair: &Pair,
        revisions: &SlotRevisions,
    ) -> Result<SlotWeights, PortError> {
        let main = larger(self.weights_of(pair, revisions)?);
        let header_to_staging = match &pair.staged {
            Some(Staged {
                policy,
                distribution: Some(staging),
                ..
            }) => {
                is_header(&policy.config)
                    && self.slot_of(revisions, &served_path(&staging.config)) == Some(main.other())
            }
            _ => false,
        };
        let to = if header_to_staging {
            main.other()
        } else {
            main
        };
        let mut w = SlotWeights { a: 0, b: 0 };
        w.set(to, 100);
        Ok(w)
    }

    async fn write_test(&self, header: &str, w: SlotWeights) -> Result<(), PortError> {
        let Some(to) = w.full_slot() else {
            return Err(PortError::new(
                "router.set_test_weights",
                ErrorKind::Invalid,
                format!("test weights {w}: the test header reaches one side, all or nothing"),
            ));
        };
        let mut revisions = self.site.slot_revisions().await?;
        let pair = self.read().await?;
        self.adopt(&pair, &mut revisions).await?;
        let main = larger(self.weights_of(&pair, &revisions)?);
        match (to == main, &pair.staged) {
            (true, Some(staged)) if is_header(&staged.policy.config) => {
                let mut policy = staged.policy.clone();
                policy.config.enabled = false;
                self.api.update_policy(&policy).await?;
            }
            (true, _) => {}
            (false, staged) => {
                let path = self.path_of(&revisions, to)?;
                self.stage(&pair, staged, &path, &Traffic::Header(header.to_string()))
                    .await?;
            }
        }
        let back = self.test_weights_of(&self.read().await?, &revisions)?;
        read_back("router.set_test_weights", w, back)
    }

    /// Keep `live`'s `{distribution}` of each slot as the router reads it.
    pub fn with_live(mut self, live: LiveValues) -> CloudFrontRouter {
        self.live = Some(live);
        self
    }

    async fn read(&self) -> Result<Pair, PortError> {
        let primary = self.api.config(&self.primary).await?;
        let Some(policy_id) = primary.config.continuous_deployment_policy_id.clone() else {
            return Ok(Pair {
                primary,
                staged: None,
            });
        };
        let policy = self.api.policy(&policy_id).await?;
        let domain = policy
            .config
            .staging_distribution_dns_names
            .as_ref()
            .and_then(|n| n.items.as_ref())
            .and_then(|i| i.first().cloned())
            .unwrap_or_default();
        let known = self.staging.lock().expect("not poisoned").clone();
        let id = match known {
            Some(id) => Some(id),
            None => self.api.staging_named(&domain).await?,
        };
        let distribution = match id {
            Some(id) => {
                let read = self.api.config(&id).await?;
                *self.staging.lock().expect("not poisoned") = Some(id);
                Some(read)
            }
            None => None,
        };
        Ok(Pair {
            primary,
            staged: Some(Staged {
                policy,
                domain,
                distribution,
            }),
        })
    }

    /// The slot whose prefix `path` is; before teal has written any slot's
    /// revision, the path the primary serves is slot A's, and then that of
    /// the slot marked [`BEFORE_TEAL`].
    fn slot_of(&self, revisions: &SlotRevisions, path: &str) -> Option<Slot> {
        let holding = |f: &dyn Fn(&str) -> bool| {
            Slot::BOTH
                .into_iter()
                .find(|s| revisions[s.index()].as_deref().is_some_and(f))
        };
        holding(&|r| r != BEFORE_TEAL && self.site.origin_path(r) == path)
            .or_else(|| revisions.iter().all(Option::is_none).then_some(Slot::A))
            .or_else(|| holding(&|r| r == BEFORE_TEAL))
    }

    /// The weights `pair` gives, with `revisions` saying which prefix is whose.
    fn weights_of(&self, pair: &Pair, revisions: &SlotRevisions) -> Result<SlotWeights, PortError> {
        let served = served_path(&pair.primary.config);
        let main = self.slot_of(revisions, &served).ok_or_else(|| {
            PortError::new(
                "router.weights",
                ErrorKind::Invalid,
                format!(
                    "distribution {} serves origin path {served:?}, which is neither slot's \
                     revision (a: {}, b: {}): changed outside teal?",
                    self.primary,
                    revisions[0].as_deref().unwrap_or("none"),
                    revisions[1].as_deref().unwrap_or("none"),
                ),
            )
        })?;
        let share = match &pair.staged {
            Some(Staged {
                policy,
                distribution: Some(staging),
                ..
            }) if self.slot_of(revisions, &served_path(&staging.config)) == Some(main.other()) => {
                share_of(&policy.config)
            }
            _ => 0,
        };
        if let Some(live) = &self.live {
            let staging = pair
                .staged
                .as_ref()
                .and_then(|s| s.distribution.as_ref())
                .map_or(NO_DISTRIBUTION, |d| d.id.as_str());
            let mut values = live.lock().expect("not poisoned");
            values[main.index()].insert("distribution", self.primary.clone());
            values[main.other().index()].insert("distribution", staging.to_string());
        }
        let mut w = SlotWeights { a: 0, b: 0 };
        w.set(main, 100 - share);
        w.set(main.other(), share);
        Ok(w)
    }

    /// The origin path of `slot`'s revision.
    fn path_of(&self, revisions: &SlotRevisions, slot: Slot) -> Result<String, PortError> {
        revisions[slot.index()]
            .as_deref()
            .map(|r| self.site.origin_path(r))
            .ok_or_else(|| {
                PortError::new(
                    "router.set_weights",
                    ErrorKind::Invalid,
                    format!(
                        "slot {slot} holds no revision of s3://{}/{}",
                        self.site.bucket, self.site.prefix
                    ),
                )
            })
    }

    /// A warning when the policy attached to the primary sends traffic to a
    /// staging distribution teal did not copy (one made by hand or by
    /// Terraform): teal drives it as its own, pointing it at green's prefix.
    async fn foreign_staging(&self) -> Result<Option<String>, PortError> {
        let pair = self.read().await?;
        let Some(Staged {
            policy,
            distribution: Some(staging),
            ..
        }) = &pair.staged
        else {
            return Ok(None);
        };
        let ours = copy_reference(&self.primary, "");
        Ok(
            (!staging.config.caller_reference.starts_with(&ours)).then(|| {
                format!(
                    "distribution {}'s continuous deployment policy {} sends traffic to staging \
                 distribution {}, which teal did not copy: teal will point it at green's \
                 prefix and set the policy's traffic; detach the policy first if that \
                 staging distribution is someone else's",
                    self.primary, policy.id, staging.id
                )
            }),
        )
    }

    /// Record blue's revision in its slot when the primary serves a prefix
    /// no slot names yet (before teal's first deployment): the way back to
    /// it must be known before anything moves.
    async fn adopt(&self, pair: &Pair, revisions: &mut SlotRevisions) -> Result<(), PortError> {
        let served = served_path(&pair.primary.config);
        let Some(slot) = self.slot_of(revisions, &served) else {
            return Ok(());
        };
        if !matches!(revisions[slot.index()].as_deref(), None | Some(BEFORE_TEAL)) {
            return Ok(());
        }
        if let Some(r) = self.site.revision_at(&served) {
            self.site.set_slot(slot, Some(&r)).await?;
            revisions[slot.index()] = Some(r);
        }
        Ok(())
    }

    async fn write(&self, w: SlotWeights) -> Result<(), PortError> {
        let main = larger(w);
        let share = w.get(main.other());
        if share > MAX_WEIGHT || !w.is_valid() {
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Invalid,
                format!(
                    "weights {w}: CloudFront continuous deployment sends the staging \
                     distribution at most {MAX_WEIGHT}%"
                ),
            ));
        }
        let mut revisions = self.site.slot_revisions().await?;
        let mut pair = self.read().await?;
        self.adopt(&pair, &mut revisions).await?;
        // 1. The primary serves the slot with the larger share.
        let main_path = self.path_of(&revisions, main)?;
        if served_path(&pair.primary.config) != main_path {
            let staging = pair.staged.as_ref().and_then(|s| s.distribution.as_ref());
            match staging {
                Some(s) if served_path(&s.config) == main_path => {
                    self.api.promote(&pair.primary, s).await?
                }
                _ => {
                    let mut primary = pair.primary.clone();
                    set_served_path(&mut primary.config, &main_path);
                    self.api.update(&primary).await?
                }
            }
            pair = self.read().await?;
        }
        // 2. The other slot's share, through the staging distribution.
        match (share, &pair.staged) {
            (0, None) => {}
            (0, Some(staged)) => {
                // A test header's policy is test traffic, not a share: the
                // test weights take it away (`write_test`).
                if staged.policy.config.enabled && !is_header(&staged.policy.config) {
                    let mut policy = staged.policy.clone();
                    policy.config.enabled = false;
                    self.api.update_policy(&policy).await?;
                }
            }
            (_, staged) => {
                let other_path = self.path_of(&revisions, main.other())?;
                let traffic = Traffic::Weight {
                    share: f32::from(share) / 100.0,
                    sticky: self.sticky,
                };
                self.stage(&pair, staged, &other_path, &traffic).await?;
            }
        }
        let back = self.weights_of(&self.read().await?, &revisions)?;
        read_back("router.set_weights", w, back)
    }

    /// Make the staging distribution serve `path` and the policy send it
    /// the requests `traffic` says, creating either the first time.
    async fn stage(
        &self,
        pair: &Pair,
        staged: &Option<Staged>,
        path: &str,
        traffic: &Traffic,
    ) -> Result<(), PortError> {
        let (staging, domain) = match staged
            .as_ref()
            .and_then(|s| s.distribution.clone().map(|d| (d, s.domain.clone())))
        {
            Some(found) => found,
            None => {
                // A copy made before a kill (or a timeout that hid its
                // answer) is taken up, never made twice.
                let (id, domain) = match self.api.copy_of(&self.primary).await? {
                    Some(found) => found,
                    None => {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_millis();
                        let reference = copy_reference(&self.primary, &now.to_string());
                        self.api.copy(&pair.primary, &reference).await?
                    }
                };
                *self.staging.lock().expect("not poisoned") = Some(id.clone());
                (self.api.config(&id).await?, domain)
            }
        };
        if served_path(&staging.config) != path {
            let mut s = staging.clone();
            set_served_path(&mut s.config, path);
            self.api.update(&s).await?;
        }
        match staged {
            Some(Staged { policy, .. })
                if policy
                    .config
                    .staging_distribution_dns_names
                    .as_ref()
                    .and_then(|n| n.items.as_ref())
                    .and_then(|i| i.first())
                    == Some(&domain) =>
            {
                let wanted = policy_config(&domain, traffic)?;
                if policy.config != wanted {
                    let mut p = policy.clone();
                    p.config = wanted;
                    self.api.update_policy(&p).await?;
                }
            }
            _ => {
                // One policy per staging distribution: one left unattached
                // by a kill is taken up, with the traffic wanted now.
                let id = match self.api.policy_for(&domain).await? {
                    Some(id) => {
                        let mut p = self.api.policy(&id).await?;
                        let wanted = policy_config(&domain, traffic)?;
                        if p.config != wanted {
                            p.config = wanted;
                            self.api.update_policy(&p).await?;
                        }
                        id
                    }
                    None => self.api.create_policy(&domain, traffic).await?,
                };
                let mut primary = self.api.config(&self.primary).await?;
                primary.config.continuous_deployment_policy_id = Some(id);
                self.api.update(&primary).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Router for CloudFrontRouter {
    async fn preflight(&self, plan: &Plan) -> Checks {
        let mut problems = Vec::new();
        if let Some(step) = plan
            .steps
            .iter()
            .find(|s| s.weight > MAX_WEIGHT && s.weight < 100)
        {
            problems.push(format!(
                "strategy: a step of {}%; CloudFront continuous deployment sends the staging \
                 distribution at most {MAX_WEIGHT}%",
                step.weight
            ));
        }
        let primary = match self.api.config(&self.primary).await {
            Ok(p) => p,
            Err(e) if e.is_transient() => return Checks::unread(e),
            Err(e) => {
                problems.push(format!("router.distribution_id: {}", e.message));
                return Checks::problems(problems);
            }
        };
        let c = &primary.config;
        if c.staging == Some(true) {
            problems.push(format!(
                "router.distribution_id: {} is a staging distribution; name the primary one",
                self.primary
            ));
        }
        // "You can't use continuous deployment with a distribution that
        // supports HTTP/3" (continuous deployment quotas and considerations).
        if let Some(v @ (HttpVersion::Http3 | HttpVersion::Http2and3)) = &c.http_version {
            problems.push(format!(
                "router.distribution_id: distribution {} has HttpVersion = {}; CloudFront \
                 continuous deployment cannot be used with HTTP/3: set it to http2 (or \
                 http1.1) first",
                self.primary,
                v.as_str()
            ));
        }
        if !c.enabled {
            problems.push(format!(
                "router.distribution_id: distribution {} is disabled",
                self.primary
            ));
        }
        match served_domain(c) {
            Some(d) if names_bucket(&d, &self.site.bucket) => {}
            d => problems.push(format!(
                "router.distribution_id: distribution {} serves origin {}, not the bucket \
                 fleet.bucket = {:?}: teal would upload green where the distribution does not \
                 look",
                self.primary,
                d.map_or("(none)".to_string(), |d| format!("{d:?}")),
                self.site.bucket
            )),
        }
        let served = served_path(c);
        if self.site.revision_at(&served).is_none() {
            problems.push(format!(
                "router.distribution_id: distribution {} serves origin path {served:?}, not a \
                 revision under s3://{}/{}/: point it at blue's prefix ({}) first",
                self.primary,
                self.site.bucket,
                self.site.prefix,
                self.site.origin_path("REVISION")
            ));
        }
        let warnings = match self.foreign_staging().await {
            Ok(w) => w.into_iter().collect(),
            Err(e) if e.is_transient() => return Checks::unread(e),
            Err(e) => vec![format!("router.distribution_id: {}", e.message)],
        };
        Checks {
            problems,
            warnings,
            unread: None,
        }
    }

    async fn weights(&self) -> Result<SlotWeights, PortError> {
        let revisions = self.site.slot_revisions().await?;
        let pair = self.read().await?;
        self.weights_of(&pair, &revisions)
    }

    async fn test_weights(&self) -> Result<Option<SlotWeights>, PortError> {
        if self.test_header.is_none() {
            return Ok(None);
        }
        let revisions = self.site.slot_revisions().await?;
        let pair = self.read().await?;
        self.test_weights_of(&pair, &revisions).map(Some)
    }

    async fn set_test_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        match &self.test_header {
            Some(header) => self.write_test(header, w).await,
            None => Err(PortError::new(
                "router.set_test_weights",
                ErrorKind::Invalid,
                "no router.test_header is configured",
            )),
        }
    }

    async fn set_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        match w.full_slot() {
            Some(_) => crate::aws::pace::urgent(self.write(w)).await,
            None => self.write(w).await,
        }
    }
}

/// The domain name of the default cache behavior's origin.
fn served_domain(c: &DistributionConfig) -> Option<String> {
    let target = &c.default_cache_behavior.as_ref()?.target_origin_id;
    c.origins
        .as_ref()?
        .items
        .iter()
        .find(|o| &o.id == target)
        .map(|o| o.domain_name.clone())
}

/// Whether `domain` is an S3 endpoint of `bucket`: the REST endpoint
/// (`BUCKET.s3.amazonaws.com`, `BUCKET.s3.REGION.amazonaws.com`, the
/// legacy `BUCKET.s3-REGION.amazonaws.com`) or the website endpoint
/// (`BUCKET.s3-website-REGION…`, `BUCKET.s3-website.REGION…`), as the
/// CloudFront Developer Guide's "Use various origins" lists them.
fn names_bucket(domain: &str, bucket: &str) -> bool {
    domain
        .strip_prefix(bucket)
        .and_then(|rest| rest.strip_prefix(".s3"))
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// The origin path the default cache behavior's origin has (`""` for none).
pub fn served_path(c: &DistributionConfig) -> String {
    let target = c
        .default_cache_behavior
        .as_ref()
        .map(|b| b.target_origin_id.as_str())
        .unwrap_or_default();
    c.origins
        .as_ref()
        .and_then(|o| o.items.iter().find(|o| o.id == target))
        .and_then(|o| o.origin_path.clone())
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

/// Point the default cache behavior's origin at `path`.
pub fn set_served_path(c: &mut DistributionConfig, path: &str) {
    let target = c
        .default_cache_behavior
        .as_ref()
        .map(|b| b.target_origin_id.clone())
        .unwrap_or_default();
    if let Some(origin) = c
        .origins
        .as_mut()
        .and_then(|o| o.items.iter_mut().find(|o| o.id == target))
    {
        origin.origin_path = Some(path.to_string());
    }
}

/// The slot with the larger share: the one the primary serves.
fn larger(w: SlotWeights) -> Slot {
    if w.a >= w.b {
        Slot::A
    } else {
        Slot::B
    }
}

/// `Ok` when what was read back is what `op` wrote; a transient error
/// otherwise (the driver writes again).
fn read_back(op: &str, wrote: SlotWeights, back: SlotWeights) -> Result<(), PortError> {
    match back == wrote {
        true => Ok(()),
        false => Err(PortError::new(
            op,
            ErrorKind::Transient,
            format!("wrote {wrote}, read back {back}"),
        )),
    }
}

/// Whether `p` is an enabled `SingleHeader` policy.
fn is_header(p: &ContinuousDeploymentPolicyConfig) -> bool {
    p.enabled
        && p.traffic_config
            .as_ref()
            .is_some_and(|t| t.r#type == ContinuousDeploymentPolicyType::SingleHeader)
}

/// The percentage a policy sends its staging distribution (0 when disabled
/// or header-based).
fn share_of(p: &ContinuousDeploymentPolicyConfig) -> u8 {
    match &p.traffic_config {
        Some(t) if p.enabled && t.r#type == ContinuousDeploymentPolicyType::SingleWeight => t
            .single_weight_config
            .as_ref()
            .map_or(0, |w| (w.weight * 100.0).round().clamp(0.0, 100.0) as u8),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::names_bucket;

    #[test]
    fn an_origin_names_its_bucket_by_any_s3_endpoint_and_no_other() {
        for d in [
            "front.s3.amazonaws.com",
            "front.s3.eu-west-1.amazonaws.com",
            "front.s3-eu-west-1.amazonaws.com",
            "front.s3-website-us-east-1.amazonaws.com",
            "front.s3-website.eu-west-1.amazonaws.com",
        ] {
            assert!(names_bucket(d, "front"), "{d}");
        }
        for d in [
            "front-old.s3.amazonaws.com",
            "other.s3.amazonaws.com",
            "front.example.com",
            "front.s3x.amazonaws.com",
            "cdn.front.s3.amazonaws.com",
        ] {
            assert!(!names_bucket(d, "front"), "{d}");
        }
    }
}
