//! The read-only checks before a deployment starts (and `teal verify`):
//! every problem at once, only a transient failure stops them.

use super::*;

impl Driver {
    /// `teal verify`: every check [`Driver::start`] makes before its first
    /// change, read-only: no lock taken, nothing written, no event emitted.
    /// A deployment in flight is a problem too (a new one would be refused,
    /// or would continue it). Patient, as [`Driver::start`] is.
    pub async fn verify(
        ports: Ports,
        settings: Settings,
        spec: &NewDeployment,
    ) -> Result<Verification, DriverError> {
        crate::ports::patient(Driver::verify_in_turn(ports, settings, spec)).await
    }

    async fn verify_in_turn(
        ports: Ports,
        settings: Settings,
        spec: &NewDeployment,
    ) -> Result<Verification, DriverError> {
        let mut io = Io::new(ports, settings, Box::new(|_| {}), spec.id.clone());
        let (existing, ledger_problem) = load_for_preflight(&mut io).await?;
        let mut problems: Vec<String> = ledger_problem.into_iter().collect();
        if let Some(rec) = existing.filter(|r| r.in_flight()) {
            problems.push(format!(
                "deployment {} (revision {}) is in flight, at {}; `teal status` shows it",
                rec.id,
                rec.revision,
                rec.phase.name()
            ));
        }
        let p = preflight(&mut io, spec).await?;
        problems.extend(p.problems);
        dedup(&mut problems);
        Ok(Verification {
            problems,
            warnings: p.warnings,
            blue: p.blue_slot.map(|s| (s, p.blue_revision)),
        })
    }
}

/// What `teal verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Every problem that would stop a deployment, all at once.
    pub problems: Vec<String>,
    /// What may surprise but would not stop it.
    pub warnings: Vec<String>,
    /// Blue's slot and revision, when the checks found them.
    pub blue: Option<(crate::model::Slot, Option<String>)>,
}

/// What the read-only checks before a deployment found.
pub(super) struct Preflight {
    pub(super) problems: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) blue_slot: Option<crate::model::Slot>,
    pub(super) blue_revision: Option<String>,
}

/// Every read-only check a deployment needs before its first change: the
/// router and the fleet adapters' own checks, 100% on one slot, blue there and
/// the other slot empty, every gate present and not already failing. Every
/// problem is collected; only a transient failure stops the checks. Run
/// patiently ([`Driver::start`]).
pub(super) async fn preflight(io: &mut Io, spec: &NewDeployment) -> Result<Preflight, DriverError> {
    if spec.plan.rolling.is_some() {
        return preflight_rolling(io, spec).await;
    }
    // A check whose read was throttled or timed out is made again after a
    // backoff, like any call; it never turns into a problem (exit 2).
    let (router, fleet) = (io.ports.router.clone(), io.ports.fleet.clone());
    let router_checks = port!(io, "router.preflight", async {
        router.preflight(&spec.plan).await.done()
    })?;
    let green = spec.green_at(io.now());
    let fleet_checks = port!(io, "fleet.preflight", async {
        fleet.preflight(&spec.plan, &green).await.done()
    })?;
    let router_checks_ok = router_checks.problems.is_empty();
    let fleet_checks_ok = fleet_checks.problems.is_empty();
    let mut problems = router_checks.problems;
    problems.extend(fleet_checks.problems);
    let warnings: Vec<String> = router_checks
        .warnings
        .into_iter()
        .chain(fleet_checks.warnings)
        .collect();
    // A read that fails for good (not found, refused) is bad input too;
    // reads of what an adapter's own checks refused are not made at all.
    let weights = match router_checks_ok {
        false => None,
        true => match port!(io, "router.weights", io.ports.router.weights()) {
            Ok(w) => Some(w),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
    };
    let blue_slot = match weights {
        Some(w) if w.is_valid() && w.full_slot().is_some() => w.full_slot(),
        Some(w) => {
            problems.push(format!(
                "the router splits traffic ({w}) but no deployment is in flight; \
                 put 100% on one slot before deploying"
            ));
            None
        }
        None => None,
    };
    let mut blue_revision = None;
    let mut blue_name = None;
    let fleets = match (blue_slot, fleet_checks_ok) {
        (Some(_), true) => match port!(io, "fleet.statuses", io.ports.fleet.statuses()) {
            Ok(f) => Some(f),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        _ => None,
    };
    if let (Some(blue), Some(mut fleets)) = (blue_slot, fleets) {
        let b = std::mem::take(&mut fleets[blue.index()]);
        let g = std::mem::take(&mut fleets[blue.other().index()]);
        if !b.exists {
            problems.push(format!("slot {blue} takes all traffic but has no fleet"));
        }
        if g.exists {
            problems.push(format!(
                "the idle slot {} already holds a fleet (revision {}); remove it or `teal rollback` first",
                blue.other(),
                g.revision.as_deref().unwrap_or("unknown")
            ));
        }
        blue_revision = b.revision;
        blue_name = b.name;
    }
    check_gates(io, spec, &mut problems).await?;
    let mut warnings = warnings;
    if spec.plan.analysis.is_some() && io.ports.metrics.is_none() {
        problems.push(
            "the plan judges its steps by canary analysis, but this provider reads no metrics"
                .into(),
        );
    }
    if let Some(metrics) = io.ports.metrics.clone() {
        warnings.extend(metrics.spec().timing_warnings(&spec.plan.steps));
        warnings.extend(metrics.spec().late_note(&spec.plan.steps));
        if let Some(slot) = blue_slot {
            let blue = crate::ports::BlueNow {
                slot,
                revision: blue_revision.as_deref(),
                name: blue_name.as_deref(),
            };
            let checks = metrics.preflight(&blue, io.now()).await;
            problems.extend(checks.problems);
            warnings.extend(checks.warnings);
        }
    }
    Ok(Preflight {
        problems,
        warnings,
        blue_slot,
        blue_revision,
    })
}

/// A rolling update's checks: what the fleet says of itself, and the gates.
/// The record's slots mean nothing here; slot A stands for the fleet.
pub(super) async fn preflight_rolling(
    io: &mut Io,
    spec: &NewDeployment,
) -> Result<Preflight, DriverError> {
    let Some(rollout) = io.ports.rollout.clone() else {
        return Ok(Preflight {
            problems: vec!["a rolling deployment needs a fleet that can update in place".into()],
            warnings: vec![],
            blue_slot: None,
            blue_revision: None,
        });
    };
    let green = spec.green_at(io.now());
    let (checks, blue_revision) = port!(io, "rollout.preflight", async {
        let (checks, current) = rollout.preflight(&green).await;
        checks.done().map(|c| (c, current))
    })?;
    let mut problems = checks.problems;
    check_gates(io, spec, &mut problems).await?;
    Ok(Preflight {
        problems,
        warnings: checks.warnings,
        blue_slot: Some(crate::model::Slot::B),
        blue_revision,
    })
}

/// Every configured gate exists and, unless allowed, is not in ALARM.
pub(super) async fn check_gates(
    io: &mut Io,
    spec: &NewDeployment,
    problems: &mut Vec<String>,
) -> Result<(), DriverError> {
    let readings = match port!(io, "gate.read", io.ports.gate.read()) {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            problems.push(format!("gates.alarms: cannot be read ({e})"));
            return Ok(());
        }
    };
    for name in &spec.gates {
        match readings.iter().find(|r| &r.name == name) {
            None => problems.push(format!("gate {name:?} does not exist")),
            Some(r) if r.state == GateState::Alarm && !spec.allow_alarm_at_start => problems.push(format!(
                "gate {name:?} is already in ALARM ({}); fix it first, or set gates.allow_alarm_at_start",
                r.reason
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The recorded deployment before a start or a verify. A ledger that cannot
/// be read for good (missing table or zone, no permission) is bad input: its
/// problem is returned with the rest of the preflight's, not as a failure.
pub(super) async fn load_for_preflight(
    io: &mut Io,
) -> Result<(Option<Record>, Option<String>), DriverError> {
    match port!(io, "ledger.load", io.ports.ledger.load()) {
        Ok(rec) => Ok((rec, None)),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok((None, Some(e.message))),
    }
}

/// Drop repeated problems (the ledger and the router may both find one
/// missing zone), keeping the first of each.
pub(super) fn dedup(problems: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
}

/// Refuse when another owner holds an unexpired lock (unless forced).
pub(super) fn check_lock(io: &Io, rec: &Record) -> Result<(), DriverError> {
    let now = io.now();
    match &rec.lock {
        Some(l) if l.owner != io.settings.owner && l.expires_at > now && !io.settings.force => {
            Err(DriverError::LockHeld {
                id: rec.id.clone(),
                revision: rec.revision.clone(),
                owner: l.owner.clone(),
                expires: fmt_ms(l.expires_at - now),
            })
        }
        _ => Ok(()),
    }
}
