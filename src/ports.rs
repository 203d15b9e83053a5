//! The ports: one small trait per concern, implemented by the AWS, local and
//! simulated adapters. The driver is the only caller.
//!
//! Ports speak in *slots* (physical targets), never in roles: which slot is
//! blue is the engine's business. Every mutating call is idempotent, so the
//! driver may retry it and a resumed deployment may repeat it.

use crate::analysis::{AnalysisSpec, MetricData};
use crate::engine::{Plan, Record};
use crate::hooks::{HookRun, HookState};
use crate::model::{FleetStatus, GateReading, Green, Millis, RolloutState, Slot, SlotWeights};
use async_trait::async_trait;
use std::sync::Arc;

/// What a read-only preflight found: problems refuse the deployment (exit 2),
/// warnings are reported and the deployment goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// Each names the config field or the resource, and what is wrong.
    pub problems: Vec<String>,
    /// Each says what may surprise, and why.
    pub warnings: Vec<String>,
    /// A read the checks need failed for a passing reason (throttled, timed
    /// out): the checks are not done, and the driver makes them again after
    /// a backoff. Not bad input: a problem never comes from it.
    pub unread: Option<PortError>,
}

impl Checks {
    /// Only problems.
    pub fn problems(problems: Vec<String>) -> Checks {
        Checks {
            problems,
            ..Checks::default()
        }
    }

    /// Checks that could not be made: `e` is transient.
    pub fn unread(e: PortError) -> Checks {
        Checks {
            unread: Some(e),
            ..Checks::default()
        }
    }

    /// `Err` while a read failed transiently (for the driver's retries).
    pub fn done(self) -> Result<Checks, PortError> {
        match self.unread {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

tokio::task_local! {
    /// Set while the driver is on its way back to blue: see [`urgent`].
    static URGENT: ();
}

/// Run `f` as work that must not wait for a rate limit: the reads and
/// writes that take traffic back to blue (a gate failing, a rollback or halt
/// under way), or move all traffic to one slot. Adapters that pace their
/// calls ([`crate::aws::pace`]) let these go at once; the simulator never
/// puts them off.
pub async fn urgent<F: std::future::Future>(f: F) -> F::Output {
    URGENT.scope((), f).await
}

/// Whether the calling task is inside [`urgent`].
pub fn is_urgent() -> bool {
    URGENT.try_with(|_| ()).is_ok()
}

tokio::task_local! {
    /// Set around calls that wait for their rate limit in turn: see [`patient`].
    static PATIENT: ();
}

/// Run `f` as work that waits for a rate limit inside the adapter, in turn,
/// instead of being put off to the driver ([`ErrorKind::Paced`]): work of
/// several calls that starts over when one is put off, and watches nothing
/// meanwhile. A deployment's checks before it starts are such work: put
/// off, a preflight of a few calls under a bucket a release's running
/// members kept in debt started over 1,681 times (median of 110 members),
/// and the release's last member started after 700 s. Waiting, it holds its
/// place like any inline wait. The simulator makes such a call wait out its
/// put-off instead of returning it.
pub async fn patient<F: std::future::Future>(f: F) -> F::Output {
    PATIENT.scope((), f).await
}

/// Whether the calling task is inside [`patient`].
pub fn is_patient() -> bool {
    PATIENT.try_with(|_| ()).is_ok()
}

/// How a port call failed, which decides whether the driver retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts: retry with backoff.
    Transient,
    /// The resource does not exist.
    NotFound,
    /// The request was refused as invalid.
    Invalid,
    /// The caller may not do this.
    Denied,
    /// A conditional write lost (the ledger changed under us).
    Conflict,
    /// Not sent: the client's own rate limit has no token for it before
    /// `after_ms` (a release's services share the account's buckets). Tried
    /// again then, the gates read meanwhile; not counted as a failed attempt.
    Paced {
        /// When a token will be there, from now.
        after_ms: Millis,
    },
}

/// A failed port call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct PortError {
    /// The operation (`router.set_weights`, `DescribeAlarms`, ...).
    pub op: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The provider's message.
    pub message: String,
}

impl PortError {
    /// A new error.
    pub fn new(op: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> PortError {
        PortError {
            op: op.into(),
            kind,
            message: message.into(),
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Paced { .. })
    }

    /// `op` was not sent: the rate limit's next token is `after_ms` away.
    pub fn paced(op: impl Into<String>, after_ms: Millis) -> PortError {
        PortError::new(
            op,
            ErrorKind::Paced { after_ms },
            format!("waiting {after_ms} ms for teal's own rate limit"),
        )
    }
}

/// The compute of each slot.
#[async_trait]
pub trait Fleet: Send + Sync {
    /// What runs in `slot`.
    async fn status(&self, slot: Slot) -> Result<FleetStatus, PortError>;
    /// What runs in both slots, indexed by [`Slot::index`]. Adapters whose
    /// describe call covers both slots override this to make it once.
    async fn statuses(&self) -> Result<[FleetStatus; 2], PortError> {
        Ok([self.status(Slot::A).await?, self.status(Slot::B).await?])
    }
    /// Create a fleet running `green` with `desired` instances in `slot`,
    /// registered into the slot's target. Succeeds if it already exists.
    async fn provision(&self, slot: Slot, green: &Green, desired: u32) -> Result<(), PortError>;
    /// Scale the fleet in `slot` to zero and delete it. Succeeds if absent.
    async fn remove(&self, slot: Slot) -> Result<(), PortError>;
    /// Read-only checks before a deployment of `plan` to `green` starts.
    async fn preflight(&self, _plan: &Plan, _green: &Green) -> Checks {
        Checks::default()
    }
}

/// A fleet updated in place (the rolling strategy): one revision replaces
/// the other, instance by instance, under the platform's own controls.
#[async_trait]
pub trait Rollout: Send + Sync {
    /// Where the rollout to `green` stands. What happened before
    /// `green.since` is history: a rollout of the same revision by an
    /// earlier deployment (rolled back, say) is not this one's.
    async fn state(&self, green: &Green) -> Result<RolloutState, PortError>;
    /// Start it (idempotent: one this deployment already started is left alone).
    async fn start(&self, green: &Green) -> Result<(), PortError>;
    /// Read-only checks before the rollout to `green` starts; the revision running now.
    async fn preflight(&self, green: &Green) -> (Checks, Option<String>);
    /// Put the previous revision back: the platform's rollback where it has
    /// one, else a rollout of the previous revision.
    async fn revert(&self) -> Result<(), PortError>;
}

/// What splits traffic between the two slots.
#[async_trait]
pub trait Router: Send + Sync {
    /// The weights as the router holds them now.
    async fn weights(&self) -> Result<SlotWeights, PortError>;
    /// Set the weights. The driver reads them back afterwards.
    async fn set_weights(&self, weights: SlotWeights) -> Result<(), PortError>;
    /// The test listener's weights; `None` when the router has none.
    async fn test_weights(&self) -> Result<Option<SlotWeights>, PortError> {
        Ok(None)
    }
    /// Set the test listener's weights.
    async fn set_test_weights(&self, _weights: SlotWeights) -> Result<(), PortError> {
        Err(PortError::new(
            "router.set_test_weights",
            ErrorKind::Invalid,
            "this router has no test listener",
        ))
    }
    /// Read-only checks before a deployment of `plan` starts.
    async fn preflight(&self, _plan: &Plan) -> Checks {
        Checks::default()
    }
}

/// What can stop a deployment.
#[async_trait]
pub trait Gate: Send + Sync {
    /// Read every configured gate. A configured gate that does not exist is
    /// absent from the answer (preflight turns that into an error).
    async fn read(&self) -> Result<Vec<GateReading>, PortError>;
    /// Resolves once a gate may have changed since the last `read` began: a
    /// hint that reading now would see something new (a release's shared
    /// alarm reading found one of this gate's alarms changed). The driver
    /// then reads at once instead of at its next poll. A gate that cannot
    /// tell never resolves; the poll reads it all the same.
    async fn changed(&self) {
        std::future::pending::<()>().await
    }
}

/// Several gates read as one, in order: a deployment's gates from more than
/// one source. One failing read fails the whole read, as one gate's would.
pub struct AllGates(pub Vec<Arc<dyn Gate>>);

#[async_trait]
impl Gate for AllGates {
    async fn read(&self) -> Result<Vec<GateReading>, PortError> {
        let mut all = Vec::new();
        for gate in &self.0 {
            all.extend(gate.read().await?);
        }
        Ok(all)
    }
    async fn changed(&self) {
        if self.0.is_empty() {
            return std::future::pending().await;
        }
        futures::future::select_all(self.0.iter().map(|g| g.changed())).await;
    }
}

/// Which data points a [`Metrics`] read asks for.
#[derive(Debug, Clone, Copy)]
pub struct MetricsQuery<'a> {
    /// Periods starting at or after this.
    pub from: Millis,
    /// Up to now.
    pub now: Millis,
    /// Each slot's revision, by [`Slot::index`], for `{revision}`.
    pub revisions: [Option<&'a str>; 2],
    /// Each slot's fleet name as last observed ([`FleetStatus::name`]), for
    /// `{service}` and `{group}`: blue may be the service teal never named.
    pub names: [Option<&'a str>; 2],
}

/// Blue before a deployment, as a [`Metrics`] preflight reads it.
#[derive(Debug, Clone, Copy)]
pub struct BlueNow<'a> {
    /// Its slot.
    pub slot: Slot,
    /// Its revision, when known.
    pub revision: Option<&'a str>,
    /// Its fleet's name, when the provider names it.
    pub name: Option<&'a str>,
}

/// Where canary analysis reads its data points: CloudWatch, the local
/// proxy's samples, the simulator's series.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// What is measured and how it is judged.
    fn spec(&self) -> &AnalysisSpec;
    /// Every metric's data points for both slots. A metric with no data
    /// has empty series (the judgment says what that means).
    async fn read(&self, query: MetricsQuery<'_>) -> Result<MetricData, PortError>;
    /// Read-only checks before a deployment starts (a query that returns
    /// nothing for blue now, say).
    async fn preflight(&self, _blue: &BlueNow<'_>, _now: Millis) -> Checks {
        Checks::default()
    }
}

/// Where the deployment record lives, with optimistic concurrency.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The current record, if any deployment was ever recorded.
    async fn load(&self) -> Result<Option<Record>, PortError>;
    /// Store `record` if the stored version still equals `record.version`
    /// (0: nothing stored yet). Returns the new version, or a
    /// [`ErrorKind::Conflict`] error when someone else wrote in between.
    async fn store(&self, record: &Record) -> Result<u64, PortError>;
}

/// Lifecycle hooks (see [`crate::hooks`]). Local to the process: `state`
/// answers from memory, so reading it every poll costs nothing.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// What this process knows of `run` in `deployment`.
    fn state(&self, deployment: &str, run: &HookRun) -> HookState;
    /// Start `run` with these environment variables; one already started is
    /// left alone.
    async fn start(
        &self,
        deployment: &str,
        run: &HookRun,
        env: Vec<(String, String)>,
    ) -> Result<(), PortError>;

    /// Resolves when a run this port started has ended since the last time
    /// it resolved (or may have: waking for nothing is harmless), so that
    /// the driver acts on a hook's end at once rather than at its next
    /// poll. Never, for a port that cannot tell.
    async fn ended(&self) {
        std::future::pending().await
    }
}

/// No hooks configured: a deployment whose plan has one cannot go on here.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    fn state(&self, _deployment: &str, _run: &HookRun) -> HookState {
        HookState::NotStarted
    }

    async fn start(
        &self,
        _deployment: &str,
        run: &HookRun,
        _env: Vec<(String, String)>,
    ) -> Result<(), PortError> {
        Err(PortError::new(
            "hook.start",
            ErrorKind::Invalid,
            format!(
                "the deployment has a {} hook but no [hooks] command is configured here",
                run.point
            ),
        ))
    }
}

/// Time, for the driver only. The real clock sleeps; the simulated one jumps.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
    /// Return at `t` (at once if it has passed).
    async fn sleep_until(&self, t: Millis);
}

/// The wall clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }

    async fn sleep_until(&self, t: Millis) {
        let now = self.now();
        if t > now {
            tokio::time::sleep(std::time::Duration::from_millis(t - now)).await;
        }
    }
}

/// One provider's set of ports.
#[derive(Clone)]
pub struct Ports {
    /// Compute.
    pub fleet: Arc<dyn Fleet>,
    /// Traffic split.
    pub router: Arc<dyn Router>,
    /// Gates.
    pub gate: Arc<dyn Gate>,
    /// Deployment record.
    pub ledger: Arc<dyn Ledger>,
    /// Lifecycle hooks ([`NoHooks`] unless `[hooks]` configures some).
    pub hooks: Arc<dyn Hooks>,
    /// The in-place update, for a rolling deployment.
    pub rollout: Option<Arc<dyn Rollout>>,
    /// Canary analysis's data points, when `[analysis]` configures it.
    pub metrics: Option<Arc<dyn Metrics>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}
