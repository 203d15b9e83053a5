//! `teal deploy` and `teal verify`: the deployment the flags describe
//! (green's revision, what it runs, the plan, the gates), checked before any
//! cloud call, then started or only checked.

use super::args::{DeployArgs, GreenArgs};
use super::green::Green;
use super::operate;
use super::render::{self, Format};
use super::session::{event_sink, owner, report_calls, runtime, signals};
use super::Failure;
use crate::config::Config;
use crate::driver::{Driver, DriverError, EventSink, NewDeployment, Settings};
use crate::events::Event;
use crate::exit::Exit;
use crate::ports::{Clock, SystemClock};
use crate::wiring::{Cloud, Provider, SimRun};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// `teal deploy`: start a deployment and drive it to its end (or, with
/// `--detach`, through its first pass).
pub(super) fn deploy(
    config: &Config,
    args: DeployArgs,
    cloud: &Cloud,
    format: Format,
) -> Result<Exit, Failure> {
    let start = SystemClock.now();
    let sim = Provider::of(config) == Provider::Sim;
    if args.sim_fail_gate.is_some() && !sim {
        return Err(Failure::Usage(
            "--sim-fail-gate applies to the simulated provider only".into(),
        ));
    }
    if args.detach && sim {
        return Err(Failure::Usage(format!(
            "{}: the simulated provider keeps no state between processes, so a detached \
             deployment could not be driven on; run it without --detach",
            config.path.display()
        )));
    }
    let spec = new_deployment(config, &args.green, cloud, start)?;
    let run = SimRun {
        start,
        fail_gate: args.sim_fail_gate.clone(),
        shared_time: None,
    };
    config.check_driving()?;
    runtime()?.block_on(async move {
        let mut wired = crate::wiring::wire(config, cloud, Some(&run)).await?;
        let ports = wired.ports.clone();
        let delivery = wired.start_notifying();
        let detach = args.detach;
        let mut observations = None;
        let recorded: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = delivery.wrap(match &args.report {
            Some(_) => recording(event_sink(format), recorded.clone()),
            None => event_sink(format),
        });
        let result = async {
            let driver = Driver::start(ports, Settings::new(owner()), spec, sink).await?;
            let mut driver = driver.with_signals(signals()?);
            let exit = if detach {
                operate::detached(&mut driver, format).await
            } else {
                driver.run().await.map(|o| Exit::for_outcome(&o))
            };
            observations = Some(driver.observations());
            Ok::<_, Failure>(exit?)
        }
        .await;
        delivery.finish().await;
        report_calls(&wired, observations, format);
        if let Some(path) = &args.report {
            let events = std::mem::take(&mut *recorded.lock().expect("events"));
            // The SDK's own operation names when AWS was used; the driver's port calls otherwise.
            let calls = wired
                .calls
                .as_ref()
                .map(|calls| {
                    calls
                        .snapshot()
                        .accepted
                        .into_iter()
                        .map(|(op, n)| (op.to_string(), n))
                        .collect()
                })
                .unwrap_or_default();
            write_report(path, &events, calls);
        }
        result
    })
}

/// Also keep every event, for the report.
fn recording(mut sink: EventSink, into: Arc<Mutex<Vec<Event>>>) -> EventSink {
    Box::new(move |e: &Event| {
        sink(e);
        into.lock().expect("events").push(e.clone());
    })
}

/// Write the run's report; a failure to write it is said, and does not
/// change the deployment's exit code (the deployment itself is over).
fn write_report(path: &std::path::Path, events: &[Event], calls: BTreeMap<String, u64>) {
    if events.is_empty() {
        eprintln!(
            "teal: no report written to {}: the deployment never started",
            path.display()
        );
        return;
    }
    let report = crate::report::Report::from_events(events, calls);
    match report.write(path) {
        Ok(()) => eprintln!("teal: report written to {}", path.display()),
        Err(e) => eprintln!("teal: could not write the report: {e}"),
    }
}

/// The deployment `deploy` would start (and `verify` checks): green's
/// revision, what it runs, the plan, the gates. Pipeline files are read here.
fn new_deployment(
    config: &Config,
    args: &GreenArgs,
    cloud: &Cloud,
    start: u64,
) -> Result<NewDeployment, Failure> {
    let plan = config.plan()?;
    let green = Green::of(config, &with_packer_ami(config, args, cloud)?)?;
    Ok(NewDeployment {
        id: deployment_id(start),
        service: config.service.clone(),
        revision: green.revision,
        plan,
        gates: config.gates.names(),
        allow_alarm_at_start: config.gates.allow_alarm_at_start,
        green: green.runs,
        build: crate::pipeline::Build::from_env(),
        release: None,
    })
}

/// `args` with `--packer-manifest` read: the AMI its last run built in the
/// region (`--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`) as `--ami`.
fn with_packer_ami(config: &Config, args: &GreenArgs, cloud: &Cloud) -> Result<GreenArgs, Failure> {
    let Some(path) = &args.packer_manifest else {
        return Ok(args.clone());
    };
    if let crate::config::FleetConfig::Ecs { .. } = config.fleet {
        return Err(Failure::Usage(
            "--packer-manifest is for Auto Scaling fleets (fleet.kind = \"asg\"), but fleet.kind is \"ecs\": \
             give green as --image, --image-definitions, --image-detail or --task-definition"
                .into(),
        ));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = cloud
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--packer-manifest {}: which region's AMI? pass --region or set AWS_REGION",
                path.display()
            ))
        })?;
    let ami =
        crate::pipeline::packer_ami(path, &region).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(GreenArgs {
        ami: Some(ami),
        packer_manifest: None,
        ..args.clone()
    })
}

/// `teal verify`: the deployment's read-only checks, every problem at once.
pub(super) fn verify(
    config: &Config,
    args: &GreenArgs,
    cloud: &Cloud,
    format: Format,
) -> Result<Exit, Failure> {
    let start = SystemClock.now();
    let spec = new_deployment(config, args, cloud, start)?;
    config.check_driving()?;
    runtime()?.block_on(async move {
        let wired = crate::wiring::wire(config, cloud, None).await?;
        let result = Driver::verify(wired.ports.clone(), Settings::new(owner()), &spec).await;
        report_calls(&wired, None, format);
        let v = result?;
        if !v.problems.is_empty() {
            return Err(Failure::Driver(DriverError::Preflight {
                problems: v.problems,
            }));
        }
        let blue = v.blue.map_or("?".to_string(), |(slot, rev)| {
            format!(
                "{} in slot {slot}",
                rev.as_deref().unwrap_or("an unlabelled revision")
            )
        });
        let line = render::CliLine::Verified {
            service: config.service.clone(),
            revision: spec.revision.clone(),
            blue: blue.clone(),
            warnings: v.warnings.clone(),
        };
        match format {
            Format::Json => {
                let _ = render::write_json(&mut std::io::stdout().lock(), &line);
            }
            Format::Text => {
                for w in &v.warnings {
                    println!("warning: {w}");
                }
                println!(
                    "ready: {} can deploy {} over blue ({blue}); every check passed",
                    config.service, spec.revision
                );
            }
        }
        Ok(Exit::Succeeded)
    })
}

/// A deployment id: `d-`, the UTC start time, and the process id to keep two
/// starts in the same second apart.
pub(super) fn deployment_id(start: u64) -> String {
    let t = crate::model::fmt_time(start).replace(['-', ':'], "");
    format!("d-{}-{:x}", t.trim_end_matches('Z'), std::process::id())
}
