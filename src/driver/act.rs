//! One action of the engine carried out through the ports, with weights read
//! back after every change, and what a failing action or signal does.

use super::*;

impl Driver {
    pub(super) async fn act(
        &mut self,
        action: Action,
        obs: &Observation,
    ) -> Result<Option<Outcome>, PortError> {
        let green_slot = self.engine.record().green_slot;
        // What the cloud holds is unknown from the moment a change is sent
        // until it is read back: a call that fails (or is cut short by a
        // failing gate) may still have taken effect. The cached observation,
        // which a failing gate's rollback decides on, must not outlive that.
        // A change read back puts what it read into the cache again.
        let cached = match action {
            Action::Wait { .. } | Action::Finish { .. } | Action::StartHook { .. } => None,
            _ => self.seen.last.take(),
        };
        // A weight change leaves the other facts as they were; anything else
        // may change them.
        self.seen.changing = match action {
            Action::Wait { .. } | Action::Finish { .. } | Action::StartHook { .. } => {
                self.seen.changing.take()
            }
            Action::SetWeights { .. } => cached.clone().or(self.seen.changing.take()),
            _ => None,
        };
        match action {
            Action::ProvisionGreen { desired } => {
                self.io.emit(EventKind::Provisioning { desired });
                let green = self.engine.record().green();
                port!(
                    self.io,
                    "fleet.provision",
                    self.io.ports.fleet.provision(green_slot, &green, desired)
                )?;
                self.seen.last = None;
            }
            Action::SetWeights { weights } => self.set_weights(weights, obs, cached).await?,
            Action::SetTestWeights { weights } => {
                let slots = weights.on_slots(green_slot);
                port!(
                    self.io,
                    "router.set_test_weights",
                    self.io.ports.router.set_test_weights(slots)
                )?;
                let actual = port!(
                    self.io,
                    "router.test_weights",
                    self.io.ports.router.test_weights()
                )?
                .map(|w| w.as_roles(green_slot));
                self.seen.last = cached.map(|mut last| {
                    last.test = actual;
                    last
                });
                if actual != Some(weights) {
                    // Tried again on the next step, like any failed action.
                    return Err(PortError::new(
                        "router.set_test_weights",
                        ErrorKind::Transient,
                        format!(
                            "the test listener did not take {weights} (read back {})",
                            actual.map_or("nothing".into(), |a| a.to_string())
                        ),
                    ));
                }
                self.io.emit(EventKind::TestWeightsSet { weights });
            }
            Action::StartRollout | Action::RevertRollout => {
                let start = matches!(action, Action::StartRollout);
                self.io.emit(EventKind::RolloutAction {
                    action: if start { "start" } else { "revert" }.into(),
                });
                let rollout = self.io.ports.rollout.clone().ok_or_else(|| {
                    PortError::new(
                        "rollout",
                        ErrorKind::Invalid,
                        "a rolling deployment needs a fleet that can update in place",
                    )
                })?;
                if start {
                    let green = self.engine.record().green();
                    port!(self.io, "rollout.start", rollout.start(&green))?;
                } else {
                    port!(self.io, "rollout.revert", rollout.revert())?;
                }
                self.seen.last = None;
            }
            Action::StartHook { run } => {
                self.io.emit(EventKind::HookStarted {
                    hook: run.to_string(),
                });
                let env = self.hook_env(&run, obs);
                let id = self.engine.record().id.clone();
                port!(
                    self.io,
                    "hook.start",
                    self.io.ports.hooks.start(&id, &run, env.clone())
                )?;
            }
            Action::RemoveGreen => {
                self.io.emit(EventKind::Removing {
                    role: "green".into(),
                    slot: green_slot,
                });
                port!(
                    self.io,
                    "fleet.remove",
                    self.io.ports.fleet.remove(green_slot)
                )?;
                self.seen.last = None;
            }
            Action::RetireBlue => {
                self.io.emit(EventKind::Removing {
                    role: "blue".into(),
                    slot: green_slot.other(),
                });
                port!(
                    self.io,
                    "fleet.remove",
                    self.io.ports.fleet.remove(green_slot.other())
                )?;
                self.seen.last = None;
            }
            Action::Wait { until } => self.wait(until).await,
            Action::Finish { outcome } => {
                let calls = self.io.calls.clone();
                self.io.emit(EventKind::Finished {
                    outcome: outcome.clone(),
                    calls,
                });
                return Ok(Some(outcome));
            }
        }
        Ok(None)
    }

    /// Set weights and read them back until they agree. `cached` is the
    /// observation taken out of the cache for the change: it goes back with
    /// each read-back, and stays out if the change ends unread.
    pub(super) async fn set_weights(
        &mut self,
        target: Weights,
        obs: &Observation,
        mut cached: Option<Observation>,
    ) -> Result<(), PortError> {
        let green_slot = self.engine.record().green_slot;
        let slots = target.on_slots(green_slot);
        let mut actual = obs.weights;
        for attempt in 1..=self.io.settings.weight_attempts {
            // Unknown until read back.
            self.seen.last = None;
            port!(
                self.io,
                "router.set_weights",
                self.io.ports.router.set_weights(slots)
            )?;
            actual = port!(self.io, "router.weights", self.io.ports.router.weights())?
                .as_roles(green_slot);
            if let Some(last) = &mut cached {
                last.weights = actual;
            }
            self.seen.last = cached.clone();
            self.seen.changing = None;
            if actual == target {
                self.io.emit(EventKind::WeightsSet { weights: target });
                return Ok(());
            }
            self.io.emit(EventKind::WeightsMismatch {
                set: target,
                actual,
                attempt,
            });
        }
        let now = self.io.now();
        self.engine.weights_did_not_take(target, actual, now);
        self.emit_transitions();
        if target.green == 0 {
            // All traffic to blue is the move with no alternative: fail the step
            // so it is tried again, and give up (record kept) if it never takes.
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Transient,
                format!("the router did not take {target} (read back {actual})"),
            ));
        }
        Ok(())
    }

    pub(super) async fn wait(&mut self, until: Millis) {
        // The next gate read is due one poll after the last, whatever the engine's deadline.
        let until = until.min(self.io.last_gate_read + self.engine.record().plan.poll_ms);
        let clock = self.io.ports.clock.clone();
        let wake = self.wake.clone();
        let woken = async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        let interrupted = self.interrupted;
        let signal = &mut self.signal;
        let signalled = async {
            match signal {
                Some(rx) if !interrupted => {
                    let _ = rx.changed().await;
                }
                _ => std::future::pending().await,
            }
        };
        // A gate that knows it changed is read now, not at the next poll;
        // so is a hook that ended (a failed before-traffic hook rolls back
        // at once, a passed one lets the step go on).
        let gate = self.io.ports.gate.clone();
        let hooks = self.io.ports.hooks.clone();
        tokio::select! {
            biased;
            _ = clock.sleep_until(until) => {}
            _ = signalled => {}
            _ = woken => {}
            _ = gate.changed() => {}
            _ = hooks.ended() => {}
        }
    }

    /// A port call failed for good: stop moving forward (traffic to blue) and
    /// try again on the next step; after a few such steps, give up and leave
    /// the record in flight for `teal resume`.
    pub(super) fn action_failed(&mut self, e: PortError) -> Result<Option<Outcome>, DriverError> {
        self.failing_steps += 1;
        if self.failing_steps >= MAX_FAILING_STEPS {
            return Err(DriverError::Port(e));
        }
        let now = self.io.now();
        self.engine.interrupt(
            Reason::ProviderFailed {
                error: e.to_string(),
                at: now,
            },
            now,
        );
        self.emit_transitions();
        Ok(None)
    }

    pub(super) fn persist_failed(
        &mut self,
        e: DriverError,
    ) -> Result<Option<Outcome>, DriverError> {
        match e {
            DriverError::Port(pe) => {
                // Without a ledger there is no crash recovery: stop moving forward,
                // and do not let further ledger failures block the way back to blue.
                self.kept.ledger_failing = true;
                self.action_failed(pe)
            }
            other => Err(other),
        }
    }

    pub(super) fn check_signal(&mut self) {
        if self.interrupted {
            return;
        }
        let Some(signal) = self.signal.as_ref().and_then(|rx| rx.borrow().clone()) else {
            return;
        };
        self.interrupted = true;
        let now = self.io.now();
        self.io.emit(EventKind::Interrupted {
            signal: signal.clone(),
        });
        self.engine
            .interrupt(Reason::Interrupted { signal, at: now }, now);
        self.emit_transitions();
    }
}
