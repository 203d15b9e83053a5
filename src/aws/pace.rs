//! Client-side rate limiting: one token bucket per AWS API family, shared by
//! every adapter of a process (a release's members all draw on the same
//! buckets), so that a process stays inside the account's quotas instead of
//! learning them from throttling errors.
//!
//! AWS throttles per account and Region with a token bucket per group of
//! actions ("family" here): a call takes a token, the bucket refills at a
//! fixed rate up to its size. [`FAMILIES`] holds AWS's documented sizes and
//! refill rates, each with its page; where AWS publishes none, a
//! conservative pick, said so. teal takes a token before each call, waiting
//! for one when the bucket is empty (reserving it, so waiters go in order).
//!
//! teal keeps [`SHARE`] of each bucket's size and rate: a call's time on the
//! wire varies, so calls that left evenly spaced can arrive bunched. Other
//! clients of the same account draw on the same AWS buckets, so teal's may
//! still be fuller than AWS's. Like the SDK's adaptive retry mode, a throttling
//! answer halves the family's refill rate here (never below a tenth), and
//! each accepted call gives back a twentieth of the documented rate. The
//! driver retries the throttled call itself, with equal-jitter backoff
//! (`driver::Retry::jittered`), reading the gates meanwhile; the SDK's own
//! retries stay off (`sdk::Aws::load`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a call waits for its token inside the adapter; a longer
/// wait is handed to the driver (see [`Pacer::take`]).
pub const INLINE_WAIT: Duration = Duration::from_millis(250);

/// The share of AWS's bucket size and refill rate teal allows itself.
pub const SHARE: f64 = 0.9;

/// One family of AWS actions that share a token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// Its name in output (`elbv2:describe`).
    pub name: &'static str,
    /// The bucket's size: calls that may go at once.
    pub burst: f64,
    /// Tokens added back per second.
    pub refill: f64,
    /// Where the numbers come from.
    pub source: &'static str,
}

const ELB: &str =
    "https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html";
const ECS: &str =
    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html";
const CLOUDWATCH: &str =
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html";
const EC2: &str = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html";
const ROUTE53: &str =
    "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html";
const S3: &str =
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html";
const PICKED: &str = "no published figure: a conservative pick";

/// The families teal calls, with AWS's sizes (per account and Region).
pub const FAMILIES: &[Family] = &[
    Family {
        name: "elbv2:describe",
        burst: 40.0,
        refill: 10.0,
        source: ELB,
    },
    Family {
        name: "elbv2:modify",
        burst: 20.0,
        refill: 2.0,
        source: PICKED,
    },
    Family {
        name: "ecs:read",
        burst: 50.0,
        refill: 20.0,
        source: ECS,
    },
    Family {
        name: "ecs:modify",
        burst: 20.0,
        refill: 5.0,
        source: PICKED,
    },
    Family {
        name: "cloudwatch:DescribeAlarms",
        burst: 9.0,
        refill: 9.0,
        source: CLOUDWATCH,
    },
    Family {
        name: "cloudwatch:GetMetricData",
        burst: 50.0,
        refill: 50.0,
        source: CLOUDWATCH,
    },
    Family {
        name: "route53",
        burst: 5.0,
        refill: 5.0,
        source: ROUTE53,
    },
    Family {
        name: "ec2:describe",
        burst: 100.0,
        refill: 20.0,
        source: EC2,
    },
    Family {
        name: "ec2:modify",
        burst: 50.0,
        refill: 5.0,
        source: EC2,
    },
    // S3 publishes rates per prefix (3,500 writes, 5,500 reads a second), no
    // bucket size: the size here is a second's worth.
    Family {
        name: "s3:read",
        burst: 5500.0,
        refill: 5500.0,
        source: S3,
    },
    Family {
        name: "s3:write",
        burst: 3500.0,
        refill: 3500.0,
        source: S3,
    },
    // CloudFront publishes no request rates for its control plane API:
    // picked low, like Route 53's, which is also global.
    Family {
        name: "cloudfront:read",
        burst: 10.0,
        refill: 5.0,
        source: PICKED,
    },
    Family {
        name: "cloudfront:write",
        burst: 5.0,
        refill: 1.0,
        source: PICKED,
    },
    Family {
        name: "autoscaling",
        burst: 20.0,
        refill: 5.0,
        source: PICKED,
    },
    Family {
        name: "application-autoscaling",
        burst: 20.0,
        refill: 5.0,
        source: PICKED,
    },
];

/// The families whose tokens a call of `op` takes: its own, or both for
/// `PutScalingPolicy`, an action of Auto Scaling and of Application Auto
/// Scaling alike (the counter knows operations by name alone); none for
/// calls AWS does not meter by request rate (DynamoDB's item reads and
/// writes are metered by capacity).
pub fn families_of(op: &str) -> Vec<&'static Family> {
    let named = |name: &str| FAMILIES.iter().find(|f| f.name == name);
    match op {
        "PutScalingPolicy" => ["autoscaling", "application-autoscaling"]
            .into_iter()
            .filter_map(named)
            .collect(),
        _ => family_of(op).into_iter().collect(),
    }
}

/// The family of operation `op` (for `PutScalingPolicy`, Auto Scaling's;
/// see [`families_of`]); `None` for calls AWS does not meter by rate.
pub fn family_of(op: &str) -> Option<&'static Family> {
    let name = match op {
        "DescribeListeners"
        | "DescribeRules"
        | "DescribeTargetGroups"
        | "DescribeTargetHealth"
        | "DescribeTags"
        | "DescribeLoadBalancers" => "elbv2:describe",
        "ModifyListener" | "ModifyRule" | "AddTags" | "RemoveTags" => "elbv2:modify",
        "DescribeServices"
        | "DescribeClusters"
        | "DescribeTaskDefinition"
        | "ListServices"
        | "ListTagsForResource" => "ecs:read",
        "CreateService"
        | "UpdateService"
        | "DeleteService"
        | "RegisterTaskDefinition"
        | "TagResource" => "ecs:modify",
        "DescribeAlarms" => "cloudwatch:DescribeAlarms",
        "GetMetricData" => "cloudwatch:GetMetricData",
        "ChangeResourceRecordSets" | "ListResourceRecordSets" | "GetChange" => "route53",
        "DescribeImages" | "DescribeLaunchTemplates" | "DescribeLaunchTemplateVersions" => {
            "ec2:describe"
        }
        "CreateLaunchTemplateVersion" => "ec2:modify",
        "DescribeScalableTargets"
        | "DescribeScalingPolicies"
        | "RegisterScalableTarget"
        | "DeregisterScalableTarget" => "application-autoscaling",
        "HeadBucket" | "ListObjectsV2" | "HeadObject" | "GetObject" => "s3:read",
        "PutObject" | "CopyObject" | "DeleteObjects" => "s3:write",
        "GetDistribution"
        | "GetDistributionConfig"
        | "ListDistributions"
        | "GetContinuousDeploymentPolicyConfig" => "cloudfront:read",
        "UpdateDistribution"
        | "CopyDistribution"
        | "UpdateDistributionWithStagingConfig"
        | "CreateContinuousDeploymentPolicy"
        | "UpdateContinuousDeploymentPolicy" => "cloudfront:write",
        "GetItem" | "PutItem" | "DeleteItem" | "UpdateItem" | "Query" => return None,
        // Every Auto Scaling action (and any new one): its own family.
        _ => "autoscaling",
    };
    FAMILIES.iter().find(|f| f.name == name)
}

/// Calls made under [`crate::ports::urgent`] take their tokens without
/// waiting for them: the way back to blue must not queue behind other
/// services' reads. The tokens are still taken (the bucket may go below
/// zero), so the calls that wait pay for them, and AWS's own bucket is the
/// same as ever: a throttled urgent call is retried like any other.
pub use crate::ports::urgent;

/// Run `f` as calls that wait for their tokens here however long, instead
/// of being put off to the driver (see [`crate::ports::patient`]): a
/// deployment's preflight, and a release's shared refresh (`aws::shared`),
/// which reads every member's keys in several calls and must not start over
/// each time one of them is put off. Put off, a refresh of six calls under a
/// bucket its 110 members keep empty almost never completes (the members'
/// reads went unanswered for minutes, a livelock); waiting here, it reserves
/// its tokens in turn like any inline wait, and the members queued on it
/// take its answer.
pub use crate::ports::patient;

fn is_patient() -> bool {
    crate::ports::is_patient() || is_shared()
}

tokio::task_local! {
    /// Set around a refresh shared by a release's members: see [`shared`].
    static SHARED: ();
}

/// Run `f` as a refresh shared by every member of a release: patient, and
/// paced even when the member that happens to make it is urgent. Its rate
/// is bounded by the answer's window (`aws::shared`), so it rarely waits;
/// taken urgently, its tokens were never paid for, and at four alarm calls a
/// second against a rate the adaptive limit had halved after a throttle,
/// the bucket's debt grew without end: the members' own `DescribeAlarms`
/// calls (their preflights) waited twenty minutes behind it on 110 services.
pub async fn shared<F: std::future::Future>(f: F) -> F::Output {
    SHARED.scope((), f).await
}

fn is_shared() -> bool {
    SHARED.try_with(|_| ()).is_ok()
}

/// One family's bucket as this process keeps it.
#[derive(Debug)]
struct Bucket {
    family: &'static Family,
    /// May go below zero: calls waiting for tokens not yet refilled.
    tokens: f64,
    /// The refill rate in use (lowered by throttling, recovering).
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * self.rate).min(self.family.burst * SHARE);
        self.at = now;
    }
}

/// Every family's bucket for one process, and what waiting they caused.
#[derive(Debug, Default)]
pub struct Pacer {
    buckets: Mutex<BTreeMap<&'static str, Bucket>>,
    /// Calls that waited for a token or were put off, and the waits (ms).
    waited: Mutex<(u64, u64)>,
}

impl Pacer {
    /// Take a token of `op`'s family (families). A call that would wait
    /// up to [`INLINE_WAIT`] for it waits here, its token reserved; a longer
    /// wait is the driver's to make (`Err(wait)`, no token taken), so that
    /// it reads the gates meanwhile: a release's services must not stop
    /// watching their alarms while they queue for the account's reads.
    /// Calls under [`urgent`] take their token at once, whatever is left;
    /// calls under [`patient`] wait here for it, however long, and so do
    /// calls under [`shared`], urgent or not.
    pub async fn take(&self, op: &str) -> Result<(), Duration> {
        let urgent = crate::ports::is_urgent() && !is_shared();
        let wait = {
            let now = Instant::now();
            let mut buckets = self.buckets.lock().expect("pacer");
            let mut wait = Duration::ZERO;
            for family in families_of(op) {
                let b = buckets.entry(family.name).or_insert_with(|| Bucket {
                    family,
                    tokens: family.burst * SHARE,
                    rate: family.refill * SHARE,
                    at: now,
                });
                b.refill(now);
                if b.tokens < 1.0 {
                    wait = wait.max(Duration::from_secs_f64((1.0 - b.tokens) / b.rate));
                }
            }
            if wait > INLINE_WAIT && !urgent && !is_patient() {
                self.note_wait(wait);
                return Err(wait);
            }
            for family in families_of(op) {
                if let Some(b) = buckets.get_mut(family.name) {
                    b.tokens -= 1.0;
                }
            }
            wait
        };
        if !wait.is_zero() && !urgent {
            self.note_wait(wait);
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Count one call that waited, or was put off, for `wait`.
    fn note_wait(&self, wait: Duration) {
        let mut w = self.waited.lock().expect("pacer waits");
        w.0 += 1;
        w.1 += wait.as_millis() as u64;
    }

    /// AWS accepted a call of `op`: its family's rate recovers a step.
    pub fn accepted(&self, op: &str) {
        self.adjust(op, |b| {
            b.rate = (b.rate + b.family.refill * SHARE / 20.0).min(b.family.refill * SHARE)
        });
    }

    /// AWS throttled a call of `op`: its family's rate halves (never below
    /// a tenth of the documented one), and the bucket is empty.
    pub fn throttled(&self, op: &str) {
        self.adjust(op, |b| {
            b.rate = (b.rate / 2.0).max(b.family.refill * SHARE / 10.0);
            b.tokens = b.tokens.min(0.0);
        });
    }

    fn adjust(&self, op: &str, change: impl Fn(&mut Bucket)) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("pacer");
        for family in families_of(op) {
            if let Some(b) = buckets.get_mut(family.name) {
                b.refill(now);
                change(b);
            }
        }
    }

    /// Calls that waited for a token or were put off for one, and those
    /// waits in all (ms).
    pub fn waited(&self) -> (u64, u64) {
        *self.waited.lock().expect("pacer waits")
    }
}

/// Whether an error code is AWS saying "too many requests".
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_teal_calls_has_a_family_and_every_family_a_source() {
        for op in [
            "DescribeListeners",
            "ModifyListener",
            "DescribeServices",
            "CreateService",
            "DescribeAlarms",
            "GetMetricData",
            "ListResourceRecordSets",
            "DescribeAutoScalingGroups",
            "DescribeImages",
            "RegisterScalableTarget",
        ] {
            assert!(family_of(op).is_some(), "{op}");
        }
        assert!(family_of("GetItem").is_none());
        assert_eq!(families_of("PutScalingPolicy").len(), 2);
        for f in FAMILIES {
            assert!(f.burst >= 1.0 && f.refill > 0.0, "{}", f.name);
            assert!(f.source == PICKED || f.source.starts_with("https://docs.aws.amazon.com/"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_past_the_bucket_goes_at_the_refill_rate() {
        let pacer = Pacer::default();
        let start = Instant::now();
        // DescribeAlarms: 9 at once and 9 a second at AWS; teal takes 90%.
        let (burst, rate) = (9.0 * SHARE, 9.0 * SHARE);
        for _ in 0..27 {
            pacer
                .take("DescribeAlarms")
                .await
                .expect("each wait is short");
        }
        let took = start.elapsed().as_secs_f64();
        let expected = (27.0 - burst) / rate;
        assert!(
            (took - expected).abs() < 0.01,
            "27 calls take {expected:.3} s of refill, took {took:.3} s"
        );
        assert_eq!(pacer.waited().0, 27 - burst.floor() as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn an_urgent_call_does_not_wait_but_pays_for_its_token() {
        let pacer = Pacer::default();
        for _ in 0..9 {
            pacer.take("ModifyListener").await.unwrap();
        }
        let start = Instant::now();
        // The bucket (18 of AWS's 20) still has tokens: drain it past zero.
        for _ in 0..20 {
            urgent(pacer.take("ModifyListener")).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "urgent calls never wait");
        // The next ordinary call is put off until the tokens the urgent ones
        // took are back, and one more: seconds, so the driver waits, not here.
        let owed = 9.0 + 20.0 + 1.0 - 20.0 * SHARE;
        let wait = pacer.take("ModifyListener").await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(
            (wait.as_secs_f64() - owed / (2.0 * SHARE)).abs() < 0.01,
            "{wait:?}"
        );
        // Put off, it took no token: after that wait it goes at once.
        tokio::time::sleep(wait).await;
        pacer.take("ModifyListener").await.unwrap();
        let took = start.elapsed().as_secs_f64();
        assert!((took - wait.as_secs_f64()).abs() < 0.01, "{took:.3} s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_patient_call_waits_for_its_token_instead_of_being_put_off() {
        let pacer = Pacer::default();
        // ModifyListener: 18 of AWS's 20 at once, 1.8 a second.
        for _ in 0..18 {
            pacer.take("ModifyListener").await.unwrap();
        }
        let wait = pacer.take("ModifyListener").await.unwrap_err();
        assert!(wait > INLINE_WAIT, "{wait:?}");
        let start = Instant::now();
        // Patient: two calls, each waits its token here, in turn.
        patient(async {
            pacer.take("ModifyListener").await.unwrap();
            pacer.take("ModifyListener").await.unwrap();
        })
        .await;
        let took = start.elapsed().as_secs_f64();
        let expected = 2.0 / (2.0 * SHARE);
        assert!(
            (took - expected).abs() < 0.01,
            "{took:.3} s, not {expected:.3}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_refresh_pays_for_its_tokens_even_for_an_urgent_member() {
        let pacer = Pacer::default();
        // DescribeAlarms: 8.1 of AWS's 9 at once, 8.1 a second; urgent
        // calls take nine at once, leaving the bucket in debt.
        urgent(async {
            for _ in 0..9 {
                pacer.take("DescribeAlarms").await.unwrap();
            }
        })
        .await;
        let start = Instant::now();
        urgent(shared(async {
            pacer.take("DescribeAlarms").await.unwrap();
        }))
        .await;
        let took = start.elapsed().as_secs_f64();
        let expected = (1.0 - (9.0 * SHARE - 9.0)) / (9.0 * SHARE);
        assert!(
            (took - expected).abs() < 0.01,
            "{took:.3} s, not {expected:.3}"
        );
        // Urgent alone: at once, debt or not.
        let start = Instant::now();
        urgent(async { pacer.take("DescribeAlarms").await.unwrap() }).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_and_accepted_calls_restore_it() {
        let pacer = Pacer::default();
        pacer.take("DescribeListeners").await.unwrap();
        pacer.throttled("DescribeListeners");
        let start = Instant::now();
        // Bucket emptied, rate halved: the next call waits a token's refill.
        let halved = 10.0 * SHARE / 2.0;
        pacer.take("DescribeListeners").await.unwrap();
        let took = start.elapsed().as_secs_f64();
        assert!((took - 1.0 / halved).abs() < 0.005, "{took:.3} s");
        for _ in 0..20 {
            pacer.accepted("DescribeListeners");
        }
        let rate = pacer.buckets.lock().unwrap()["elbv2:describe"].rate;
        assert!((rate - 10.0 * SHARE).abs() < 1e-9, "{rate}");
    }
}
