//! The ports plus what every call needs: retries with jittered backoff, call
//! counting, events, and the gate watch that reads the gates on their own
//! cadence while another call waits out its backoff.

use super::*;
use rand::RngExt as _;

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
    /// short. One attempt per read; a read that fails is left to the
    /// observation, which counts unreadable polls.
    pub(super) async fn wait_out_backoff(&mut self, op: &str, until: Millis) -> Option<PortError> {
        loop {
            let watch = match self.watch {
                Some(w) if op != "gate.read" => w,
                _ => {
                    self.ports.clock.sleep_until(until).await;
                    return None;
                }
            };
            let due = self.last_gate_read + watch.poll_ms;
            if due >= until {
                self.ports.clock.sleep_until(until).await;
                return None;
            }
            // Due at the poll, or sooner if the gate knows it changed.
            let gate = self.ports.gate.clone();
            tokio::select! {
                biased;
                _ = self.ports.clock.sleep_until(due) => {}
                _ = gate.changed() => {}
            }
            *self.calls.entry("gate.read".to_string()).or_default() += 1;
            self.last_gate_read = self.now();
            let read = self.ports.gate.read().await;
            let Ok(readings) = read else {
                // A failed read does not leave the gates unread a whole poll:
                // the next is due after the first retry's backoff.
                let retry = self.settings.retry.backoff(1).min(watch.poll_ms);
                self.last_gate_read = (self.now() + retry).saturating_sub(watch.poll_ms);
                continue;
            };
            let failing: Vec<String> = readings
                .iter()
                .filter(|r| watch.fails(r))
                .map(|r| r.name.clone())
                .collect();
            if !failing.is_empty() {
                self.preempted = Some(readings);
                return Some(PortError::new(
                    op,
                    ErrorKind::Transient,
                    format!("retries stopped: gate {} is failing", failing.join(", ")),
                ));
            }
        }
    }
}
