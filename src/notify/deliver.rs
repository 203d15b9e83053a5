//! Delivery to one channel: its own queue and task, so that a channel that
//! hangs holds up neither the deployment nor the other channels. Each
//! notification is tried [`ATTEMPTS`] times, each attempt cut at
//! [`ATTEMPT_TIMEOUT`], with jittered exponential backoff between them. A
//! channel found failing is warned about (`warn` says it once per channel,
//! whatever else reports it: see `Notifier::start`); while it keeps failing, later
//! notifications get one attempt each, so its queue does not grow behind the
//! retries; the first success ends that.

use super::message::Notification;
use super::Channel;
use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Attempts per notification while the channel works.
pub const ATTEMPTS: u32 = 4;
/// The longest one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first backoff's cap; each next one doubles, each wait drawn from its
/// upper half (equal jitter).
pub const BACKOFF: Duration = Duration::from_millis(500);

/// Says a warning in the deployment's event stream.
pub type Warn = Arc<dyn Fn(String) + Send + Sync>;

/// What one channel's task did, when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Notifications delivered.
    pub delivered: u32,
    /// Notifications given up on.
    pub failed: u32,
}

/// Deliver what arrives on `queue` to `channel` until `done` is set and the
/// queue is empty.
pub async fn run(
    channel: Arc<dyn Channel>,
    mut queue: mpsc::UnboundedReceiver<Arc<Notification>>,
    mut done: watch::Receiver<bool>,
    warn: Warn,
) -> Tally {
    let mut tally = Tally::default();
    let mut failing = false;
    loop {
        let next = tokio::select! {
            biased;
            n = queue.recv() => n,
            _ = done.wait_for(|d| *d) => queue.try_recv().ok(),
        };
        let Some(n) = next else {
            return tally;
        };
        let attempts = if failing { 1 } else { ATTEMPTS };
        match send(channel.as_ref(), &n, attempts).await {
            Ok(()) => {
                tally.delivered += 1;
                failing = false;
            }
            Err(why) => {
                tally.failed += 1;
                warn(format!(
                    "notification {} to {} not delivered after {attempts} attempt(s): {why}; \
                     the deployment goes on, and later failures of this channel are not reported",
                    n.kind.name(),
                    channel.describe()
                ));
                failing = true;
            }
        }
    }
}

async fn send(channel: &dyn Channel, n: &Notification, attempts: u32) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            let cap = BACKOFF.as_millis() as u64 * (1 << (attempt - 1));
            let wait = rand::rng().random_range(cap / 2..=cap);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        last = match tokio::time::timeout(ATTEMPT_TIMEOUT, channel.send(n)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs()),
        };
    }
    Err(last)
}
