//! The ports plus what every call needs: retries with jittered backoff, call
//! counting, events, and the gate watch that reads the gates on their own
//! cadence while another call waits out its backoff or, for a read, while it
//! is in flight.

use super::*;
use rand::RngExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The ports plus what every call needs: retries, counting, events, and the
/// gates read on their own cadence while another call waits out its backoff.
pub(super) struct Io {
    pub(super) ports: Ports,
    pub(super) settings: Settings,
    pub(super) sink: EventSink,
    pub(super) calls: BTreeMap<String, u64>,
    pub(super) deployment: String,
    pub(super) jitter: rand_chacha::ChaCha8Rng,
    /// When the last gate read began, by an observation or by the watch:
    /// the next is due one poll later.
    pub(super) last_gate_read: Millis,
    /// While set, a retry's backoff reads the gates whenever a read is due,
    /// and a failing gate ends the retries (see [`Io::wait_out_backoff`]).
    pub(super) watch: Option<GateWatch>,
    /// The readings that preempted a call: the next observation's gates.
    pub(super) preempted: Option<Vec<GateReading>>,
    /// On the way back to blue (a gate failing, a rollback or halt under
    /// way): calls run under [`crate::ports::urgent`], never put off.
    pub(super) urgent: bool,
}

/// What the gate watch needs to know: when a read is due and what fails.
#[derive(Debug, Clone, Copy)]
pub(super) struct GateWatch {
    pub(super) poll_ms: Millis,
    pub(super) insufficient_data: InsufficientData,
}

impl GateWatch {
    pub(super) fn fails(&self, r: &GateReading) -> bool {
        match r.state {
            GateState::Alarm => true,
            GateState::InsufficientData => self.insufficient_data == InsufficientData::Alarm,
            GateState::Ok => false,
        }
    }
}

impl Io {
    pub(super) fn new(ports: Ports, settings: Settings, sink: EventSink, deployment: String) -> Io {
        use rand::SeedableRng as _;
        Io {
            jitter: rand_chacha::ChaCha8Rng::seed_from_u64(settings.jitter_seed),
            ports,
            settings,
            sink,
            calls: BTreeMap::new(),
            deployment,
            last_gate_read: 0,
            watch: None,
            preempted: None,
            urgent: false,
        }
    }

    pub(super) fn now(&self) -> Millis {
        self.ports.clock.now()
    }

    pub(super) fn emit(&mut self, kind: EventKind) {
        let event = Event {
            at: self.now(),
            deployment: self.deployment.clone(),
            kind,
        };
        (self.sink)(&event);
    }

    /// Count a call, and after a transient failure wait out the backoff.
    /// `Some(e)` means give up with `e`.
    pub(super) async fn after_failure(
        &mut self,
        op: &str,
        attempt: u32,
        e: PortError,
    ) -> Option<PortError> {
        if let ErrorKind::Paced { after_ms } = e.kind {
            // Not sent: wait for the token (a tenth more, so that calls put
            // off together do not all come back at once), gates read meanwhile.
            let spread = self.jitter.random_range(0..=after_ms / 10);
            tracing::debug!(op, after_ms, "put off by the rate limit");
            let until = self.now() + after_ms + spread;
            return self.wait_out_backoff(op, until).await;
        }
        if !e.is_transient() || attempt >= self.settings.retry.attempts {
            return Some(e);
        }
        let backoff_ms = self.settings.retry.jittered(attempt, &mut self.jitter);
        tracing::warn!(op, attempt, error = %e, backoff_ms, "transient failure; retrying");
        self.emit(EventKind::Retrying {
            op: op.to_string(),
            attempt,
            error: e.message,
            backoff_ms,
        });
        let until = self.now() + backoff_ms;
        self.wait_out_backoff(op, until).await
    }

    /// Sleep until `until`, but read the gates whenever a read falls due
    /// meanwhile: a call retried through throttling must not keep the gates
    /// unread past their poll. A failing gate ends the retries at once
    /// (`Some(error)`), its readings kept for the next observation, so the
    /// driver goes straight to its decision (a rollback). Only between
    /// attempts: a call in flight, a weight write above all, is never cut
    /// short (a read may be: see `port!`).
    pub(super) async fn wait_out_backoff(&mut self, op: &str, until: Millis) -> Option<PortError> {
        let Some(watcher) = self.watcher().filter(|_| op != "gate.read") else {
            self.ports.clock.sleep_until(until).await;
            return None;
        };
        // In turn, not raced: a simulated clock jumps to whichever sleep is
        // asked first, so the backoff's own sleep would always win.
        loop {
            if watcher.due() >= until {
                self.ports.clock.sleep_until(until).await;
                self.take_back(watcher);
                return None;
            }
            if let Some(readings) = watcher.next_read().await {
                return Some(self.cut_short(watcher, op, readings));
            }
        }
    }

    /// The gate watch for a call about to be made or waited out, if the
    /// gates are watched now.
    pub(super) fn watcher(&self) -> Option<Watcher> {
        let watch = self.watch?;
        Some(Watcher {
            gate: self.ports.gate.clone(),
            clock: self.ports.clock.clone(),
            watch,
            retry_ms: self.settings.retry.backoff(1).min(watch.poll_ms),
            last_read: AtomicU64::new(self.last_gate_read),
            reads: AtomicU64::new(0),
        })
    }

    /// Take back the gate reads `watcher` made while a call ran or waited.
    pub(super) fn take_back(&mut self, watcher: Watcher) {
        *self.calls.entry("gate.read".to_string()).or_default() +=
            watcher.reads.load(Ordering::Relaxed);
        self.last_gate_read = watcher.last_read.load(Ordering::Relaxed);
    }

    /// `op` was cut short by a failing gate: the error it ends with, the
    /// readings kept for the next observation.
    pub(super) fn cut_short(
        &mut self,
        watcher: Watcher,
        op: &str,
        readings: Vec<GateReading>,
    ) -> PortError {
        let names: Vec<&str> = readings
            .iter()
            .filter(|r| watcher.watch.fails(r))
            .map(|r| r.name.as_str())
            .collect();
        let e = PortError::new(
            op,
            ErrorKind::Transient,
            format!("cut short: gate {} is failing", names.join(", ")),
        );
        self.take_back(watcher);
        self.preempted = Some(readings);
        e
    }
}

/// What came first: the call's answer, or a failing gate's readings.
pub(super) enum Raced<T> {
    Answered(T),
    Failing(Vec<GateReading>),
}

/// The gates read on their own cadence while another call runs or waits
/// out its backoff, apart from the driver (which that call borrows): reads
/// and their times are taken back by [`Io::take_back`].
pub(super) struct Watcher {
    gate: Arc<dyn crate::ports::Gate>,
    clock: Arc<dyn crate::ports::Clock>,
    watch: GateWatch,
    /// After a failed read, the next is due this much later.
    retry_ms: Millis,
    /// When the last gate read began; the next is due one poll later.
    last_read: AtomicU64,
    reads: AtomicU64,
}

impl Watcher {
    /// When the next gate read is due.
    pub(super) fn due(&self) -> Millis {
        self.last_read.load(Ordering::Relaxed) + self.watch.poll_ms
    }

    /// Read the gates whenever a read falls due until one fails: its
    /// readings. Never ends while every gate passes.
    pub(super) async fn until_failing(&self) -> Vec<GateReading> {
        loop {
            if let Some(readings) = self.next_read().await {
                return readings;
            }
        }
    }

    /// Wait for the next read (due at the poll, or sooner if the gate knows
    /// it changed) and make it: the readings, if a gate fails. One attempt
    /// per read; a read that fails is left to the observation, which counts
    /// unreadable polls.
    async fn next_read(&self) -> Option<Vec<GateReading>> {
        tokio::select! {
            biased;
            _ = self.clock.sleep_until(self.due()) => {}
            _ = self.gate.changed() => {}
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let began = self.clock.now();
        self.last_read.store(began, Ordering::Relaxed);
        match self.gate.read().await {
            Ok(readings) if readings.iter().any(|r| self.watch.fails(r)) => Some(readings),
            Ok(_) => None,
            // A failed read does not leave the gates unread a whole poll:
            // the next is due after the first retry's backoff.
            Err(_) => {
                let next = (self.clock.now() + self.retry_ms).saturating_sub(self.watch.poll_ms);
                self.last_read.store(next, Ordering::Relaxed);
                None
            }
        }
    }
}
