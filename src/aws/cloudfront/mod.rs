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

/// The largest share of requests a staging distribution can have.
pub use crate::config::CLOUDFRONT_MAX_WEIGHT as MAX_WEIGHT;
