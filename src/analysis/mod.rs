//! Canary analysis: green judged against blue on the same metrics, not only
//! on alarms that watch the whole service (which a canary's share dilutes).
//!
//! - [`mann_whitney`]: the rank test that compares green's data points with
//!   blue's over a bake;
//! - [`judge`]: each metric's verdict from it, and the score over all of them.

pub mod judge;
pub mod mann_whitney;
