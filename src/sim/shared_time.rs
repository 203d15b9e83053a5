//! One virtual time for several simulated worlds in one process (a
//! release's members): each world's clock also waits on tokio's paused
//! clock, which auto-advances only when every task waits, so the members'
//! times advance together instead of each running to its end at once.

use super::SimCloud;
use crate::model::Millis;
use crate::ports::Clock;
use async_trait::async_trait;

/// A world's clock on the shared time: `start` (virtual) is tokio's `origin`.
pub struct SharedTime {
    cloud: SimCloud,
    start: Millis,
    origin: tokio::time::Instant,
}

impl SharedTime {
    /// `cloud`'s clock, its virtual `start` at tokio's `origin`; tokio's
    /// clock must be paused (a runtime built with `start_paused`).
    pub fn new(cloud: SimCloud, start: Millis, origin: tokio::time::Instant) -> SharedTime {
        SharedTime {
            cloud,
            start,
            origin,
        }
    }
}

#[async_trait]
impl Clock for SharedTime {
    fn now(&self) -> Millis {
        // A world created with the release but first used waves later has
        // stood still meanwhile: it catches up with the shared time.
        let shared = self.start + self.origin.elapsed().as_millis() as Millis;
        let mut w = self.cloud.world();
        w.now = w.now.max(shared);
        w.now
    }

    async fn sleep_until(&self, t: Millis) {
        let at = self.origin + std::time::Duration::from_millis(t.saturating_sub(self.start));
        tokio::time::sleep_until(at).await;
        self.cloud.sleep_until(t).await;
    }
}
