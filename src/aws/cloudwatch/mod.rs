//! CloudWatch: the alarm gate ([`alarms`]) and canary analysis's data
//! points ([`metrics`]), each read with one batched call per poll.

pub mod alarms;
pub mod metrics;

pub use alarms::AlarmGate;
pub use metrics::CloudWatchMetrics;
