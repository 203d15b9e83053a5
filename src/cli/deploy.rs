//! `teal deploy` and `teal verify`: the deployment the flags describe
//! (green's revision, what it runs, the plan, the gates), checked before any
//! cloud call, then started or only checked.

use super::args::{DeployArgs, GreenArgs};
use super::operate;
use super::render::{self, Format};
use super::session::{event_sink, owner, report_calls, runtime, signals, wire};
use super::Failure;
use crate::aws::autoscaling::GreenTemplate;
use crate::aws::ecs::GreenTask;
use crate::config::{Config, FleetConfig};
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
    let spec = new_deployment(config, &args.green, start)?;
    let run = SimRun {
        start,
        fail_gate: args.sim_fail_gate.clone(),
    };
    runtime()?.block_on(async move {
        let wired = wire(config, cloud, Some(&run)).await?;
        let ports = wired.ports.clone();
        let detach = args.detach;
        let mut observations = None;
        let recorded: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = match &args.report {
            Some(_) => recording(event_sink(format), recorded.clone()),
            None => event_sink(format),
        };
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
fn new_deployment(config: &Config, args: &GreenArgs, start: u64) -> Result<NewDeployment, Failure> {
    let plan = config.plan()?;
    check_green_flags(config, args)?;
    let task = green_task(args)?;
    let revision = revision_label(args, task.as_ref(), config);
    Ok(NewDeployment {
        id: deployment_id(start),
        service: config.service.clone(),
        revision,
        plan,
        gates: config.gates.names(),
        allow_alarm_at_start: config.gates.allow_alarm_at_start,
        green: green_spec(args, task),
        build: crate::pipeline::Build::from_env(),
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
    let spec = new_deployment(config, args, start)?;
    runtime()?.block_on(async move {
        let wired = wire(config, cloud, None).await?;
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

/// The green flags, before any cloud call: each value well formed, and
/// each flag one the configured fleet kind takes (ECS fleets run images and
/// task definitions, Auto Scaling fleets launch template versions and AMIs).
fn check_green_flags(config: &Config, args: &GreenArgs) -> Result<(), Failure> {
    let given = |flag: &'static str, v: &Option<String>| v.clone().map(|v| (flag, v));
    let ecs_flags = [
        given("--image", &args.image),
        given("--task-definition", &args.task_definition),
    ];
    let asg_flags = [
        given("--ami", &args.ami),
        given("--launch-template-version", &args.launch_template_version),
    ];
    let revision = [given("--revision", &args.revision)];
    let all = ecs_flags
        .iter()
        .chain(&asg_flags)
        .chain(&revision)
        .flatten();
    for (flag, value) in all {
        if value.trim().is_empty() {
            return Err(Failure::Usage(format!("{flag}: must not be empty")));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Failure::Usage(format!(
                "{flag} {value:?}: must not contain spaces or control characters"
            )));
        }
    }
    if let Some(image) = &args.image {
        // ECS: an image reference is at most 255 characters.
        if image.len() > 255 {
            return Err(Failure::Usage(format!(
                "--image: {} characters; ECS takes an image reference of at most 255",
                image.len()
            )));
        }
    }
    if let Some(ami) = &args.ami {
        let hex = ami.strip_prefix("ami-").unwrap_or("");
        if !(8..=17).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Failure::Usage(format!(
                "--ami {ami:?}: not an AMI id (ami- and 8 or 17 hex digits)"
            )));
        }
    }
    if let Some(v) = &args.launch_template_version {
        if v != "$Latest" && v != "$Default" && !v.parse::<u64>().is_ok_and(|n| n >= 1) {
            return Err(Failure::Usage(format!(
                "--launch-template-version {v:?}: a version number (1, 2, ...), $Latest or $Default"
            )));
        }
    }
    let pipeline_files = [
        args.image_definitions
            .as_ref()
            .map(|_| "--image-definitions"),
        args.image_detail.as_ref().map(|_| "--image-detail"),
    ];
    let wrong = match &config.fleet {
        FleetConfig::Ecs { .. } => asg_flags.iter().flatten().map(|(f, _)| *f).next().map(|f| {
            format!(
                "{f} is for Auto Scaling fleets (fleet.kind = \"asg\"), but fleet.kind is \"ecs\": \
                 give green as --image, --image-definitions, --image-detail or --task-definition"
            )
        }),
        FleetConfig::Asg { .. } => ecs_flags
            .iter()
            .flatten()
            .map(|(f, _)| *f)
            .chain(pipeline_files.into_iter().flatten())
            .next()
            .map(|f| {
                format!(
                    "{f} is for ECS fleets (fleet.kind = \"ecs\"), but fleet.kind is \"asg\": \
                     give green as --launch-template-version N or --ami ID"
                )
            }),
        _ => None,
    };
    match wrong {
        Some(message) => Err(Failure::Usage(message)),
        None => Ok(()),
    }
}

/// What green runs, from the deploy flags, in the ledger's words.
fn green_spec(args: &GreenArgs, task: Option<GreenTask>) -> Option<String> {
    let template = args
        .launch_template_version
        .clone()
        .map(GreenTemplate::Version)
        .or_else(|| args.ami.clone().map(GreenTemplate::Ami));
    task.map(|t| t.spec())
        .or_else(|| template.map(|t| t.spec()))
}

/// Green's revision label: `--revision` (or CodeBuild's source version), else
/// what green runs.
fn revision_label(args: &GreenArgs, task: Option<&GreenTask>, config: &Config) -> String {
    if let Some(r) = &args.revision {
        return r.clone();
    }
    // registry/repo:tag or repo@sha256:digest: the part that changes.
    let version = |image: &str| {
        crate::pipeline::image_version(image)
            .unwrap_or_else(|| image.rsplit('/').next().unwrap_or(image))
            .to_string()
    };
    match task {
        Some(GreenTask::Image(image)) => return version(image),
        Some(GreenTask::Images(images)) => {
            // The served container's image, else the first listed.
            let container = match &config.fleet {
                crate::config::FleetConfig::Ecs { container, .. } => Some(container.as_str()),
                _ => None,
            };
            let image = container
                .and_then(|c| images.get(c))
                .or_else(|| images.values().next());
            if let Some(image) = image {
                return version(image);
            }
        }
        Some(GreenTask::TaskDefinition(td)) => {
            return td.rsplit('/').next().unwrap_or(td).to_string()
        }
        None => {}
    }
    if let Some(ami) = &args.ami {
        return ami.clone();
    }
    if let Some(v) = &args.launch_template_version {
        return format!("launch-template-v{v}");
    }
    "v2".to_string()
}

/// What green's tasks run, from `--image`, `--image-definitions`,
/// `--image-detail` or `--task-definition`. A pipeline file that is missing,
/// empty or malformed is refused here, before any cloud call.
fn green_task(args: &GreenArgs) -> Result<Option<GreenTask>, Failure> {
    let bad = |e: crate::pipeline::InputError| Failure::Usage(e.to_string());
    Ok(if let Some(path) = &args.image_definitions {
        Some(GreenTask::Images(
            crate::pipeline::image_definitions(path).map_err(bad)?,
        ))
    } else if let Some(path) = &args.image_detail {
        Some(GreenTask::Image(
            crate::pipeline::image_detail(path).map_err(bad)?,
        ))
    } else if let Some(image) = &args.image {
        Some(GreenTask::Image(image.clone()))
    } else if let Some(td) = &args.task_definition {
        // A task definition file would need every field mapped onto the SDK's
        // builders; half a mapping would drop fields silently. Say so instead.
        if td.ends_with(".json") || std::path::Path::new(td).is_file() {
            return Err(Failure::Usage(format!(
                "--task-definition {td}: takes an ARN or family:revision, not a file; register \
                 it first (aws ecs register-task-definition --cli-input-json file://{td}) and \
                 pass the ARN it prints, or use --image / --image-definitions to derive green \
                 from blue's task definition"
            )));
        }
        Some(GreenTask::TaskDefinition(td.clone()))
    } else {
        None
    })
}

/// A deployment id: `d-`, the UTC start time, and the process id to keep two
/// starts in the same second apart.
pub(super) fn deployment_id(start: u64) -> String {
    let t = crate::model::fmt_time(start).replace(['-', ':'], "");
    format!("d-{}-{:x}", t.trim_end_matches('Z'), std::process::id())
}
