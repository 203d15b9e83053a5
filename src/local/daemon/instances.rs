//! The instances: child processes per slot, their health loop, and their
//! start and stop.

use super::*;

pub(super) struct Instance {
    /// The revision it runs (a rolling update mixes two in one slot).
    pub(super) revision: String,
    pub(super) port: u16,
    /// `127.0.0.1:port`, parsed once: the proxy puts it in every request's URI.
    pub(super) authority: hyper::http::uri::Authority,
    pub(super) child: tokio::process::Child,
    pub(super) healthy: Arc<AtomicBool>,
}

pub(super) struct Fleet {
    /// The revision its instances run, or are being rolled to.
    pub(super) revision: String,
    pub(super) desired: u32,
    pub(super) instances: Vec<Instance>,
    /// When it was provisioned: the newest fleet is the one the gates judge.
    pub(super) born: Instant,
}

/// Start one instance. It dies with the daemon: the kernel sends it SIGTERM
/// when the daemon's thread exits (PR_SET_PDEATHSIG), even on SIGKILL.
pub(super) fn spawn(
    command: &[String],
    port: u16,
    revision: &str,
    slot: Slot,
) -> std::io::Result<tokio::process::Child> {
    let fill = |s: &String| {
        s.replace("{port}", &port.to_string())
            .replace("{revision}", revision)
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = tokio::process::Command::new(fill(program));
    cmd.args(args.iter().map(fill))
        .env("TEAL_PORT", port.to_string())
        .env("TEAL_REVISION", revision)
        .env("TEAL_SLOT", slot.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

impl Daemon {
    pub(super) async fn provision(
        &self,
        slot: Slot,
        p: ProvisionRequest,
    ) -> Result<(), (StatusCode, String)> {
        {
            let fleets = self.fleets.lock().expect("fleets lock");
            if let Some(f) = &fleets[slot.index()] {
                return if f.revision == p.revision {
                    Ok(()) // idempotent
                } else {
                    Err((
                        StatusCode::CONFLICT,
                        format!("slot {slot} runs revision {}", f.revision),
                    ))
                };
            }
        }
        let mut instances = Vec::new();
        // Found together: instances started in one go never share a port.
        let ports = free_ports(p.desired as usize).map_err(internal)?;
        for port in ports {
            let child = spawn(&self.cfg.command, port, &p.revision, slot).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot start {:?}: {e}", self.cfg.command.first()),
                )
            })?;
            instances.push(Instance {
                revision: p.revision.clone(),
                port,
                authority: format!("127.0.0.1:{port}")
                    .parse()
                    .expect("a loopback authority"),
                child,
                healthy: Arc::new(AtomicBool::new(false)),
            });
        }
        // A new fleet starts with an empty window: a green after a rolled-back
        // one is judged on its own requests only.
        self.restart_measures(slot);
        let mut fleets = self.fleets.lock().expect("fleets lock");
        fleets[slot.index()] = Some(Fleet {
            revision: p.revision,
            desired: p.desired,
            instances,
            born: Instant::now(),
        });
        Ok(())
    }

    pub(super) async fn remove(&self, slot: Slot) {
        // Out of the routing table first, then stopped.
        let fleet = self.fleets.lock().expect("fleets lock")[slot.index()].take();
        let Some(fleet) = fleet else { return };
        let grace = self.cfg.grace;
        let mut stops = tokio::task::JoinSet::new();
        for mut i in fleet.instances {
            stops.spawn(async move {
                if let Some(pid) = i.child.id() {
                    // SAFETY: kill(2) on our own child with a valid signal.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                if tokio::time::timeout(grace, i.child.wait()).await.is_err() {
                    let _ = i.child.kill().await;
                }
            });
        }
        while stops.join_next().await.is_some() {}
    }

    pub(super) fn statuses(&self) -> [FleetStatus; 2] {
        let fleets = self.fleets.lock().expect("fleets lock");
        Slot::BOTH.map(|s| match &fleets[s.index()] {
            None => FleetStatus::absent(),
            Some(f) => FleetStatus {
                exists: true,
                revision: Some(f.revision.clone()),
                desired: f.desired,
                healthy: f
                    .instances
                    .iter()
                    .filter(|i| i.healthy.load(Ordering::Relaxed))
                    .count() as u32,
                name: None,
            },
        })
    }

    pub(super) fn instances(&self) -> Vec<InstanceInfo> {
        let fleets = self.fleets.lock().expect("fleets lock");
        Slot::BOTH
            .into_iter()
            .filter_map(|s| fleets[s.index()].as_ref().map(|f| (s, f)))
            .flat_map(|(slot, f)| {
                f.instances.iter().map(move |i| InstanceInfo {
                    slot,
                    revision: i.revision.clone(),
                    port: i.port,
                    healthy: i.healthy.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    pub(super) async fn health_loop(&self) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        loop {
            let checks: Vec<(u16, Arc<AtomicBool>)> = {
                let mut fleets = self.fleets.lock().expect("fleets lock");
                fleets
                    .iter_mut()
                    .flatten()
                    .flat_map(|f| f.instances.iter_mut())
                    .map(|i| {
                        // An instance that exited is unhealthy for good.
                        if matches!(i.child.try_wait(), Ok(Some(_))) {
                            i.healthy.store(false, Ordering::Relaxed);
                            (0, i.healthy.clone())
                        } else {
                            (i.port, i.healthy.clone())
                        }
                    })
                    .collect()
            };
            for (port, flag) in checks.into_iter().filter(|(p, _)| *p != 0) {
                let uri = format!("http://127.0.0.1:{port}{}", self.cfg.health_path);
                let req = Request::get(uri)
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request");
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(1), client.request(req)).await,
                    Ok(Ok(r)) if r.status().is_success()
                );
                flag.store(ok, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Take instances out of routing, give their requests in flight time to
    /// finish, then stop them.
    pub(super) async fn stop_instances(&self, slot: Slot, ports: &[u16]) {
        let instances: Vec<Instance> = {
            let mut fleets = self.fleets.lock().expect("fleets lock");
            let Some(f) = fleets[slot.index()].as_mut() else {
                return;
            };
            let (out, keep) = std::mem::take(&mut f.instances)
                .into_iter()
                .partition(|i| ports.contains(&i.port));
            f.instances = keep;
            out
        };
        if instances.is_empty() {
            return;
        }
        tokio::time::sleep(ROLL_DRAIN).await;
        for i in &instances {
            if let Some(pid) = i.child.id() {
                // SAFETY: kill(2) on our own child with a valid signal.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
        }
        for mut i in instances {
            if tokio::time::timeout(self.cfg.grace, i.child.wait())
                .await
                .is_err()
            {
                let _ = i.child.kill().await;
            }
        }
    }
}
