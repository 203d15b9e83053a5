//! Canary analysis: green judged against blue on the same metrics, not only
//! on alarms that watch the whole service (which a canary's share dilutes).
//!
//! - [`mann_whitney`]: the rank test that compares green's data points with
//!   blue's over a bake;
//! - [`judge`]: each metric's verdict from it, and the score over all of them;
//! - [`spec`]: what `[analysis]` asks for, validated: metrics, presets,
//!   queries with per-slot placeholders, thresholds, timing;
//! - [`assess`]: data points to what the engine acts on (a bound breached
//!   now, a step's judgment).
//!
//! Where the data points come from is a port ([`crate::ports::Metrics`]):
//! CloudWatch `GetMetricData`, the local proxy's samples, the simulator's
//! series.

pub mod assess;
pub mod judge;
pub mod mann_whitney;
pub mod spec;

pub use assess::{MetricData, Point, StepJudgment, StepOutcome, Window};
pub use spec::{AnalysisSpec, MarginalAction, OnMarginal};
