//! The command line: raw clap arguments in, validated config and a command
//! out, run over the library; every path ends in a documented [`Exit`].

mod demo;
mod operate;
pub mod plan;
mod progress;
pub mod render;

use crate::config::{Config, ConfigError, FleetConfig, RouterConfig};
use crate::driver::{Driver, DriverError, EventSink, NewDeployment, Settings};
use crate::engine::{Command as EngineCommand, Plan};
use crate::events::Event;
use crate::exit::Exit;
use crate::ports::Clock;
use crate::sim::scenario::{render as render_run, run_seed};
use crate::sim::{SimCloud, SimGate, World};
use crate::strategy;
use clap::{Parser, Subcommand};
use render::Format;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// teal: blue/green traffic shifting for ECS and EC2 behind ALB or Route 53.
#[derive(Debug, Parser)]
#[command(name = "teal", version, about, long_about = None)]
pub struct Cli {
    /// Config file [default: $TEAL_CONFIG, then ./teal.toml]
    #[arg(
        long,
        short,
        global = true,
        env = "TEAL_CONFIG",
        default_value = "teal.toml",
        hide_default_value = true
    )]
    pub config: PathBuf,

    /// Output: plain lines (text) or one JSON object per line (json).
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,

    /// AWS region [default: from the environment or profile].
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// AWS profile [default: from the environment].
    #[arg(long, global = true)]
    pub profile: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the built-in strategies and their steps.
    Strategies,
    /// Print the schedule a deployment would follow; no cloud call.
    Plan {
        /// Use this strategy (built-in name or file) instead of the config's.
        #[arg(long, short)]
        strategy: Option<String>,
    },
    /// Deploy a new revision: stand up green, shift traffic in steps, retire blue.
    Deploy(DeployArgs),
    /// Check, read-only, everything a deployment needs (router, both target groups, the fleet,
    /// the alarms, what green runs); list every problem at once, exit 2 if any.
    Verify {
        /// Use this strategy (built-in name or file) instead of the config's.
        #[arg(long, short)]
        strategy: Option<String>,
        /// What green runs.
        #[command(flatten)]
        green: GreenArgs,
    },
    /// Show the deployment: phase, step, weights set and actual, health, gates, what comes next. Read-only.
    Status {
        /// Keep watching: redraw on a terminal, print only changes otherwise; ends when the deployment does.
        #[arg(long)]
        watch: bool,
        /// How often `--watch` reads.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// Set the weights by hand (`--to green 25%`, `--to blue 100%`); holds automatic progress until `resume` or `promote`.
    Shift {
        /// Which role the percentage is for.
        #[arg(long, value_enum)]
        to: Role,
        /// Its share of traffic, 0-100, with or without `%`.
        #[arg(value_parser = parse_percent)]
        percent: u8,
        /// Do not roll back on failing gates while this hold lasts (an explicit override).
        #[arg(long)]
        ignore_gates: bool,
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Go to the next step now (`--full`: straight to 100% green; the keep-alive still applies).
    Promote {
        /// Straight to 100% green.
        #[arg(long)]
        full: bool,
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Hold automatic progress at the current step; gates are still watched.
    Pause {
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Continue the deployment: lift a pause or manual hold, or take over one whose process died and drive it to its end.
    Resume {
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Put all traffic back on blue now, skipping all steps, and remove green.
    Rollback {
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Retire blue now, skipping the rest of the keep-alive; only once green holds 100%.
    Retire {
        /// Take the deployment over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
    /// Drive the recorded deployment: observe, decide, act, record. For a scheduled job.
    Reconcile {
        /// One pass: act until the deployment must wait (a bake, the keep-alive), then exit.
        #[arg(long)]
        once: bool,
    },
    /// The whole job on this machine with no AWS account: blue v1 serving through teal's proxy under load, a canary of v2, weights moving, per-slot request counts; `--bad` deploys a green that fails 30% of requests and is rolled back.
    Demo {
        /// Deploy a green that fails 30% of its requests.
        #[arg(long)]
        bad: bool,
        /// A rolling update in place instead of a canary: instances replaced a
        /// batch at a time, each new one routed once its health check passes.
        #[arg(long)]
        rolling: bool,
    },
    /// The local provider's daemon: `teal local serve`.
    Local {
        /// What to do.
        #[command(subcommand)]
        command: LocalCommand,
    },
    /// Summarise a report written by `teal deploy --report`; with `--svg`, draw its timeline
    /// (weights over time, step boundaries, gate states, the rollback or retirement marker).
    Report {
        /// The report (JSON).
        file: std::path::PathBuf,
        /// Write the timeline here as SVG.
        #[arg(long, value_name = "FILE.svg")]
        svg: Option<std::path::PathBuf>,
    },
    /// The demo app (used by `teal demo` and `examples/local`).
    #[command(hide = true)]
    DemoApp {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
        /// Revision label; options after `+`: `fail=0.3`, `latency=50ms`, `slow-start=5s`.
        #[arg(long)]
        revision: String,
        /// Health path.
        #[arg(long, default_value = "/healthz")]
        health_path: String,
    },
    /// Replay simulated deployments by seed, with fault injection and invariant checks.
    Sim {
        /// First seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How many seeds from there.
        #[arg(long, default_value_t = 1)]
        runs: u64,
    },
}

impl Command {
    /// An operator command as the engine's command and its `--force`.
    fn operator(&self) -> Option<(EngineCommand, bool)> {
        Some(match *self {
            Command::Shift {
                to,
                percent,
                ignore_gates,
                force,
            } => {
                let green = match to {
                    Role::Green => percent,
                    Role::Blue => 100 - percent,
                };
                let cmd = EngineCommand::Shift {
                    green,
                    ignore_gates,
                };
                (cmd, force)
            }
            Command::Promote { full: true, force } => (EngineCommand::PromoteFull, force),
            Command::Promote { full: false, force } => (EngineCommand::Promote, force),
            Command::Pause { force } => (EngineCommand::Pause, force),
            Command::Resume { force } => (EngineCommand::Resume, force),
            Command::Rollback { force } => (EngineCommand::Rollback, force),
            Command::Retire { force } => (EngineCommand::Retire, force),
            _ => return None,
        })
    }
}

/// `teal local ...`.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Run teal's weighted proxy, the instances, the live metric gates and the ledger until SIGINT/SIGTERM; deployments talk to it through its admin API.
    Serve {
        /// Start this revision in slot A with all traffic (the first blue).
        #[arg(long)]
        initial_revision: Option<String>,
    },
}

/// A role, for `shift --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The candidate revision.
    Green,
    /// The live revision.
    Blue,
}

/// `25%` or `25` → 25; 0..=100.
fn parse_percent(s: &str) -> Result<u8, String> {
    let n = s.strip_suffix('%').unwrap_or(s);
    match n.trim().parse::<u8>() {
        Ok(p) if p <= 100 => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0% to 100%")),
    }
}

/// What green runs and its label: `deploy` and `verify` take the same flags.
#[derive(Debug, clap::Args)]
pub struct GreenArgs {
    /// Green's revision label [default: $CODEBUILD_RESOLVED_SOURCE_VERSION, else the image tag or task definition].
    #[arg(long, env = "CODEBUILD_RESOLVED_SOURCE_VERSION")]
    pub revision: Option<String>,
    /// ECS: green runs blue's task definition with the configured container's image set to this.
    #[arg(long, conflicts_with_all = ["task_definition", "image_definitions", "image_detail"])]
    pub image: Option<String>,
    /// ECS: green runs blue's task definition with each listed container's image replaced
    /// (the ECS deploy action's imagedefinitions.json: [{"name", "imageUri"}]).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["task_definition", "image_detail"])]
    pub image_definitions: Option<std::path::PathBuf>,
    /// ECS: green runs the image in the ECR source action's imageDetail.json (its ImageURI),
    /// in the configured container.
    #[arg(long, value_name = "FILE", conflicts_with = "task_definition")]
    pub image_detail: Option<std::path::PathBuf>,
    /// ECS: green runs this task definition (ARN or family:revision).
    #[arg(long)]
    pub task_definition: Option<String>,
    /// Auto Scaling: green runs this version of blue's launch template.
    #[arg(long, conflicts_with = "ami")]
    pub launch_template_version: Option<String>,
    /// Auto Scaling: green runs a new version of blue's launch template with this AMI.
    #[arg(long)]
    pub ami: Option<String>,
}

/// `teal deploy` arguments.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Use this strategy (built-in name or file) instead of the config's.
    #[arg(long, short)]
    pub strategy: Option<String>,
    /// What green runs.
    #[command(flatten)]
    pub green: GreenArgs,
    /// Start the deployment, do the first steps that need no waiting, print its id and exit 0;
    /// `teal reconcile --once` (scheduled) or `teal resume` drives it on.
    #[arg(long)]
    pub detach: bool,
    /// Simulated provider only: this gate goes to ALARM this long after the start (NAME@DURATION).
    #[arg(long, value_name = "NAME@DURATION")]
    pub sim_fail_gate: Option<String>,
    /// Write a JSON report of the run here at its end: every event with its time, weights and
    /// gate states over time, API calls per operation, outcome and reason (`teal report` draws it).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<std::path::PathBuf>,
}

/// A command's failure, with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Failure {
    fn exit(&self) -> Exit {
        match self {
            Failure::Config(e) => Exit::for_config_error(e),
            Failure::Driver(e) => Exit::for_driver_error(e),
            Failure::Usage(_) => Exit::BadInput,
            Failure::Io(_) => Exit::Unexpected,
        }
    }
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Exit {
    let format = cli.output;
    match dispatch(cli) {
        Ok(exit) => exit,
        Err(f) => {
            report_failure(&f, format);
            f.exit()
        }
    }
}

fn report_failure(f: &Failure, format: Format) {
    let exit = f.exit();
    if format == Format::Json {
        let line = render::CliLine::Error {
            exit: exit.code(),
            message: f.to_string(),
        };
        let _ = render::write_json(&mut std::io::stdout().lock(), &line);
    }
    match f {
        Failure::Config(e) => {
            // miette draws the file:line:col message and the offending line.
            let mut report = String::new();
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            match handler.render_report(&mut report, e) {
                // miette marks the headline with "×"; lead with "error:" like every other failure.
                Ok(()) => eprint!(
                    "error: {}",
                    report.trim_start().trim_start_matches('×').trim_start()
                ),
                Err(_) => eprintln!("error: {e}"),
            }
        }
        other => eprintln!("error: {other}"),
    }
}

fn dispatch(cli: Cli) -> Result<Exit, Failure> {
    let flags = cli.aws_flags();
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Report { file, svg } => report(&file, svg.as_deref(), cli.output),
        Command::Strategies => {
            let all = strategy::builtins();
            match cli.output {
                Format::Text => write!(out, "{}", plan::render_strategies(&all))?,
                Format::Json => {
                    for s in &all {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({ "strategy": s, "schedule": plan::Schedule::of(s) })
                        )?;
                    }
                }
            }
            Ok(Exit::Succeeded)
        }
        Command::Plan { strategy } => {
            let config = Config::load(&cli.config, strategy.as_deref())?;
            // What deploy would refuse, plan refuses too.
            plan_of(&config)?;
            match cli.output {
                Format::Text => write!(out, "{}", plan::render_plan(&config))?,
                Format::Json => {
                    let report = plan::PlanReport {
                        service: &config.service,
                        config: config.path.display().to_string(),
                        fleet: &config.fleet,
                        router: &config.router,
                        gates: &config.gates.alarms,
                        insufficient_data: config.gates.insufficient_data,
                        schedule: plan::Schedule::of(&config.strategy),
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&report).map_err(std::io::Error::other)?
                    )?;
                }
            }
            Ok(Exit::Succeeded)
        }
        Command::Verify { strategy, green } => verify(
            &Config::load(&cli.config, strategy.as_deref())?,
            &green,
            &flags,
            cli.output,
        ),
        Command::Deploy(args) => {
            let config = Config::load(&cli.config, args.strategy.as_deref())?;
            deploy(&config, args, &flags, cli.output)
        }
        Command::Status { watch, interval } => status(
            &Config::load(&cli.config, None)?,
            &flags,
            cli.output,
            watch.then_some(interval),
        ),
        Command::Shift { .. }
        | Command::Promote { .. }
        | Command::Pause { .. }
        | Command::Resume { .. }
        | Command::Rollback { .. }
        | Command::Retire { .. } => {
            let (cmd, force) = cli.command.operator().expect("an operator command");
            operate::run(
                &Config::load(&cli.config, None)?,
                &flags,
                cmd,
                force,
                cli.output,
            )
        }
        Command::Reconcile { once } => {
            operate::reconcile(&Config::load(&cli.config, None)?, &flags, once, cli.output)
        }
        Command::Demo { bad, rolling } => demo::demo(bad, rolling, cli.output),
        Command::Local {
            command: LocalCommand::Serve { initial_revision },
        } => demo::serve(&Config::load(&cli.config, None)?, initial_revision),
        Command::DemoApp {
            port,
            revision,
            health_path,
        } => {
            let b = crate::local::app::Behaviour::parse(&revision).map_err(Failure::Usage)?;
            runtime()?.block_on(crate::local::app::serve(port, b, health_path))?;
            Ok(Exit::Succeeded)
        }
        Command::Sim { seed, runs } => {
            let mut broken = 0;
            for s in seed..seed.saturating_add(runs) {
                let report = run_seed(s);
                if runs == 1 || !report.violations.is_empty() {
                    write!(out, "{}", render_run(&report))?;
                }
                broken += usize::from(!report.violations.is_empty());
            }
            if runs > 1 {
                writeln!(out, "{runs} seeds from {seed}: {broken} broke an invariant")?;
            }
            Ok(if broken == 0 {
                Exit::Succeeded
            } else {
                Exit::Unexpected
            })
        }
    }
}

/// The rolling strategy of a config, if it has one, once it is known to fit
/// the fleet, the router and the hooks.
fn rolling_of(config: &Config) -> Result<Option<strategy::Rolling>, Failure> {
    let crate::strategy::Shape::Rolling(r) = config.strategy.shape else {
        return Ok(None);
    };
    if r.step.is_some() && !matches!(config.fleet, FleetConfig::Asg { .. }) {
        return Err(Failure::Usage(format!(
            "strategy {:?}: rolling.step sets an Auto Scaling instance refresh's \
             checkpoints; an ECS service or the local provider replaces instances \
             as min_healthy_percent and max_percent allow, so leave step out",
            config.strategy.name
        )));
    }
    if matches!(config.fleet, FleetConfig::Asg { .. })
        && r.max_percent > u16::from(r.min_healthy_percent) + 100
    {
        return Err(Failure::Usage(format!(
            "strategy {:?}: an instance refresh takes max_percent ({}) at most 100 above \
             min_healthy_percent ({}); raise min_healthy_percent or lower max_percent",
            config.strategy.name, r.max_percent, r.min_healthy_percent
        )));
    }
    // The timeout bounds the whole update, checkpoint waits included.
    let held = (r.checkpoints().len().saturating_sub(1) as u64) * r.bake_ms;
    if held > 0 && held >= config.strategy.green_healthy_timeout_ms {
        return Err(Failure::Usage(format!(
            "strategy {:?}: the instance refresh waits {} at each checkpoint before the \
             last, {} in all, but green_healthy_timeout = {} bounds the whole update, so \
             it would always time out and roll back; raise green_healthy_timeout well \
             above {}, or use a larger step or a shorter bake",
            config.strategy.name,
            crate::model::fmt_ms(r.bake_ms),
            crate::model::fmt_ms(held),
            crate::model::fmt_ms(config.strategy.green_healthy_timeout_ms),
            crate::model::fmt_ms(held),
        )));
    }
    if matches!(config.fleet, FleetConfig::Sim { .. }) {
        return Err(Failure::Usage(format!(
            "strategy {:?} is a rolling update; the simulated provider shifts \
             traffic only (the simulation suite covers rolling updates)",
            config.strategy.name
        )));
    }
    let test_listener = matches!(
        config.router,
        RouterConfig::Alb {
            test_listener: Some(_),
            ..
        }
    );
    if test_listener {
        return Err(Failure::Usage(format!(
            "{}: router.test_listener_arn applies to blue/green strategies; a rolling \
             update replaces instances in place and has no test traffic",
            config.path.display()
        )));
    }
    // Before the update starts and after it has baked; nothing to retire.
    if let Some(point) = config.hooks.commands.keys().find(|p| {
        matches!(
            p,
            crate::hooks::HookPoint::BeforeRetire | crate::hooks::HookPoint::AfterTestTraffic
        )
    }) {
        return Err(Failure::Usage(format!(
            "{}: hooks.{} has no point in a rolling update (no second fleet to retire, \
             no test traffic); a rolling update runs before_traffic (before it starts) \
             and after_step (once it has baked)",
            config.path.display(),
            point.config_key()
        )));
    }
    Ok(Some(r))
}

/// The engine's plan for a config.
fn plan_of(config: &Config) -> Result<Plan, Failure> {
    let rolling = rolling_of(config)?;
    let steps = match (config.strategy.steps(), rolling) {
        (Some(steps), _) => steps.to_vec(),
        // One 100% step holding the bake: the rolling update's gate-watched wait.
        (None, Some(r)) => vec![crate::strategy::Step {
            weight: 100,
            bake_ms: r.bake_ms,
        }],
        (None, None) => unreachable!("a strategy has steps or is rolling"),
    };
    Ok(Plan {
        rolling,
        strategy: config.strategy.name.clone(),
        steps,
        keep_alive_ms: config.strategy.keep_alive_ms,
        poll_ms: config.strategy.poll_ms,
        green_healthy_timeout_ms: config.strategy.green_healthy_timeout_ms,
        insufficient_data: config.gates.insufficient_data,
        hooks: config.hooks.commands.keys().copied().collect(),
        test_traffic: matches!(
            config.router,
            RouterConfig::Alb {
                test_listener: Some(_),
                ..
            }
        ),
    })
}

/// `ports` with the config's hook commands, when it has any.
pub fn with_hooks(mut ports: crate::ports::Ports, config: &Config) -> crate::ports::Ports {
    if !config.hooks.commands.is_empty() {
        ports.hooks = std::sync::Arc::new(crate::runner::CommandHooks::new(
            config.hooks.commands.clone(),
            std::time::Duration::from_millis(config.hooks.timeout_ms),
        ));
    }
    ports
}

/// Who this process is, for the lock: the CodeBuild build, or user@host:pid.
pub fn owner() -> String {
    if let Ok(id) = std::env::var("CODEBUILD_BUILD_ID") {
        return format!("codebuild:{id}");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}:{}", std::process::id())
}

/// Green's revision label: `--revision` (or CodeBuild's source version), else
/// what green runs.
fn revision_label(
    args: &GreenArgs,
    task: Option<&crate::aws::ecs::GreenTask>,
    config: &Config,
) -> String {
    use crate::aws::ecs::GreenTask;
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
fn green_task(args: &GreenArgs) -> Result<Option<crate::aws::ecs::GreenTask>, Failure> {
    use crate::aws::ecs::GreenTask;
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

/// `--region` and `--profile`.
#[derive(Debug, Clone, Default)]
struct AwsFlags {
    region: Option<String>,
    profile: Option<String>,
}

impl Cli {
    fn aws_flags(&self) -> AwsFlags {
        AwsFlags {
            region: self.region.clone(),
            profile: self.profile.clone(),
        }
    }
}

fn is_sim(config: &Config) -> bool {
    matches!(
        (&config.fleet, &config.router),
        (FleetConfig::Sim { .. }, RouterConfig::Sim)
    )
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The AWS SDK set-up, for a config that uses AWS (`None` for the local provider).
async fn load_aws(config: &Config, flags: &AwsFlags) -> Option<crate::aws::Aws> {
    if crate::local::is_local(config) {
        return None;
    }
    Some(crate::aws::Aws::load(flags.region.clone(), flags.profile.clone()).await)
}

/// The ports for a config (not for the simulated provider): AWS, green given
/// as its spec, or the local daemon's.
fn aws_ports(
    aws: Option<&crate::aws::Aws>,
    config: &Config,
    green: Option<&str>,
) -> Result<crate::ports::Ports, Failure> {
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(crate::ports::SystemClock);
    let Some(aws) = aws else {
        return crate::local::ports(config, clock)
            .map(|p| with_hooks(p, config))
            .ok_or_else(|| {
                Failure::Usage("the local provider needs fleet and router of kind \"local\"".into())
            });
    };
    let green = green.map(crate::aws::Green::parse).unwrap_or_default();
    crate::aws::ports(aws, config, green, clock)
        .map(|p| with_hooks(p, config))
        .map_err(Failure::Usage)
}

/// The AWS API calls of this run, if it used AWS.
/// The AWS API calls this process made, per operation; with the number of
/// observations of the deployment when it drove one (each reads the gates once).
fn report_aws_calls(aws: &Option<crate::aws::Aws>, observations: Option<u64>, format: Format) {
    if let Some(aws) = aws {
        report_api_calls(&aws.calls.snapshot(), observations, format);
    }
}

fn event_sink(format: Format) -> EventSink {
    match format {
        Format::Json => Box::new(move |e: &Event| {
            let _ = render::write_event(&mut std::io::stdout().lock(), format, e);
        }),
        Format::Text => {
            let mut sink = progress::TextSink::new(progress::Mode::detect());
            Box::new(move |e: &Event| sink.write(e))
        }
    }
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
fn green_spec(args: &GreenArgs, task: Option<crate::aws::ecs::GreenTask>) -> Option<String> {
    use crate::aws::asg::GreenTemplate;
    crate::aws::Green {
        task,
        template: args
            .launch_template_version
            .clone()
            .map(GreenTemplate::Version)
            .or_else(|| args.ami.clone().map(GreenTemplate::Ami)),
    }
    .spec()
}

fn deploy(
    config: &Config,
    args: DeployArgs,
    flags: &AwsFlags,
    format: Format,
) -> Result<Exit, Failure> {
    let start = crate::ports::SystemClock.now();
    let sim = is_sim(config);
    if args.sim_fail_gate.is_some() && !sim {
        return Err(Failure::Usage(
            "--sim-fail-gate applies to the simulated provider only".into(),
        ));
    }
    if args.detach && sim {
        return Err(no_state_in_sim(config));
    }
    let spec = new_deployment(config, &args.green, start)?;
    let green = spec.green.clone();
    runtime()?.block_on(async move {
        let (ports, aws) = if sim {
            (
                sim_ports(config, start, args.sim_fail_gate.as_deref())?,
                None,
            )
        } else {
            let aws = load_aws(config, flags).await;
            (aws_ports(aws.as_ref(), config, green.as_deref())?, aws)
        };
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
        report_aws_calls(&aws, observations, format);
        if let Some(path) = &args.report {
            let events = std::mem::take(&mut *recorded.lock().expect("events"));
            // The SDK's own operation names when AWS was used; the driver's port calls otherwise.
            let calls = aws
                .as_ref()
                .map(|a| {
                    a.calls
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

/// `teal report FILE.json [--svg OUT.svg]`.
fn report(
    file: &std::path::Path,
    svg: Option<&std::path::Path>,
    format: Format,
) -> Result<Exit, Failure> {
    let report = crate::report::Report::read(file).map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(svg) = svg {
        report
            .draw_svg(svg)
            .map_err(|e| Failure::Io(std::io::Error::other(e.to_string())))?;
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "schema": 1,
                "deployment": report.deployment,
                "outcome": report.outcome.as_ref().map(|o| o.class()),
                "summary": report.summary,
                "svg": svg.map(|p| p.display().to_string()),
            })
        )?,
        Format::Text => {
            writeln!(
                out,
                "{} {} of {} ({}): {}",
                report.deployment, report.revision, report.service, report.strategy, report.summary
            )?;
            let took = report.ended_at.saturating_sub(report.started_at);
            let changes: Vec<String> = report
                .weights
                .iter()
                .map(|w| format!("{}%", w.green))
                .collect();
            writeln!(
                out,
                "  {} over {}; green's weight: {}",
                report.events.len().to_string() + " events",
                crate::model::fmt_ms(took),
                changes.join(" → ")
            )?;
            let calls: u64 = report.calls.values().sum();
            writeln!(
                out,
                "  {calls} calls over {} operations",
                report.calls.len()
            )?;
            if let Some(svg) = svg {
                writeln!(out, "  timeline drawn to {}", svg.display())?;
            }
        }
    }
    Ok(Exit::Succeeded)
}

/// The deployment `deploy` would start (and `verify` checks): green's
/// revision, what it runs, the plan, the gates. Pipeline files are read here.
fn new_deployment(config: &Config, args: &GreenArgs, start: u64) -> Result<NewDeployment, Failure> {
    let plan = plan_of(config)?;
    check_green_flags(config, args)?;
    let task = green_task(args)?;
    let revision = revision_label(args, task.as_ref(), config);
    Ok(NewDeployment {
        id: deployment_id(start),
        service: config.service.clone(),
        revision,
        plan,
        gates: config
            .gates
            .alarms
            .iter()
            .cloned()
            .chain(crate::local::gate_names(config))
            .collect(),
        allow_alarm_at_start: config.gates.allow_alarm_at_start,
        green: green_spec(args, task),
        build: crate::pipeline::Build::from_env(),
    })
}

/// `teal verify`: the deployment's read-only checks, every problem at once.
fn verify(
    config: &Config,
    args: &GreenArgs,
    flags: &AwsFlags,
    format: Format,
) -> Result<Exit, Failure> {
    if is_sim(config) {
        return Err(Failure::Usage(format!(
            "{}: the simulated provider has nothing to verify",
            config.path.display()
        )));
    }
    let start = crate::ports::SystemClock.now();
    let spec = new_deployment(config, args, start)?;
    runtime()?.block_on(async move {
        let aws = load_aws(config, flags).await;
        let ports = aws_ports(aws.as_ref(), config, spec.green.as_deref())?;
        let result = Driver::verify(ports, Settings::new(owner()), &spec).await;
        report_aws_calls(&aws, None, format);
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

/// The simulated provider keeps nothing between processes.
fn no_state_in_sim(config: &Config) -> Failure {
    Failure::Usage(format!(
        "{}: the simulated provider keeps no state between processes, so there is no deployment to show or continue",
        config.path.display()
    ))
}

fn status(
    config: &Config,
    flags: &AwsFlags,
    format: Format,
    watch: Option<std::time::Duration>,
) -> Result<Exit, Failure> {
    if is_sim(config) {
        return Err(no_state_in_sim(config));
    }
    runtime()?.block_on(async {
        let ports = aws_ports(load_aws(config, flags).await.as_ref(), config, None)?;
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdout()) && format == Format::Text;
        let mut last: Option<serde_json::Value> = None;
        loop {
            let report = crate::status::read(&ports)
                .await
                .map_err(DriverError::Port)?;
            // What counts as a change: everything but the read time and the
            // countdown in words (`next_at` carries the time itself).
            let key = report.as_ref().map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["at"] = serde_json::Value::Null;
                v["next"] = serde_json::Value::Null;
                v
            });
            let changed = last.is_none() || key != last;
            let mut out = std::io::stdout().lock();
            if tty && watch.is_some() {
                // Redraw in place.
                write!(out, "\x1b[H\x1b[2J")?;
            }
            if changed || tty {
                match (&report, format) {
                    (None, Format::Json) => writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "schema": crate::status::STATUS_SCHEMA, "deployment": null })
                    )?,
                    (None, Format::Text) => {
                        writeln!(out, "no deployment is recorded for {}", config.service)?
                    }
                    (Some(r), Format::Json) => writeln!(
                        out,
                        "{}",
                        serde_json::to_string(r).map_err(std::io::Error::other)?
                    )?,
                    (Some(r), Format::Text) => write!(out, "{}", crate::status::render(r))?,
                }
                out.flush()?;
            }
            let ended = report.as_ref().is_none_or(|r| r.outcome.is_some());
            match watch {
                Some(every) if !ended => tokio::time::sleep(every).await,
                _ => return Ok(Exit::Succeeded),
            }
            last = key.or(Some(serde_json::Value::Null));
        }
    })
}

/// The AWS API calls of this run, per operation.
fn report_api_calls(calls: &crate::aws::CallCounts, observations: Option<u64>, format: Format) {
    let total = calls.total();
    match format {
        Format::Json => {
            let line = render::CliLine::ApiCalls {
                total,
                observations,
                calls: calls
                    .accepted
                    .iter()
                    .map(|(op, n)| (op.to_string(), *n))
                    .collect(),
                rejected: calls.rejected.clone(),
            };
            let _ = render::write_json(&mut std::io::stdout().lock(), &line);
        }
        Format::Text => {
            let list = |m: &mut dyn Iterator<Item = (String, u64)>| {
                m.map(|(op, n)| format!("{op}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let per_op = list(&mut calls.accepted.iter().map(|(o, n)| (o.to_string(), *n)));
            let over = observations.map_or(String::new(), |n| format!(" over {n} observations"));
            println!("AWS API calls: {total}{over} ({per_op})");
            // Apart: the summary line lists what AWS carried out.
            if !calls.rejected.is_empty() {
                let n: u64 = calls.rejected.values().sum();
                println!(
                    "AWS rejected {n} of them, changing nothing: {}",
                    list(&mut calls.rejected.iter().map(|(o, n)| (o.clone(), *n)))
                );
            }
        }
    }
}

/// A deployment id: `d-`, the UTC start time, and the process id to keep two
/// starts in the same second apart.
fn deployment_id(start: u64) -> String {
    let t = crate::model::fmt_time(start).replace(['-', ':'], "");
    format!("d-{}-{:x}", t.trim_end_matches('Z'), std::process::id())
}

/// The simulated provider's ports for a `kind = "sim"` config.
fn sim_ports(
    config: &Config,
    start: u64,
    sim_fail_gate: Option<&str>,
) -> Result<crate::ports::Ports, Failure> {
    let FleetConfig::Sim {
        instances,
        healthy_after_ms,
        live_revision,
    } = &config.fleet
    else {
        unreachable!("called for the simulated provider only")
    };
    if !config.hooks.commands.is_empty() {
        // Hooks are real commands taking real time; the simulated clock jumps.
        return Err(Failure::Usage(format!(
            "{}: [hooks] run real commands, which the simulated provider's virtual clock \
             cannot wait for; try them with the local provider (examples/local)",
            config.path.display()
        )));
    }
    let mut gates: Vec<SimGate> = config
        .gates
        .alarms
        .iter()
        .map(|a| SimGate {
            name: a.clone(),
            script: vec![],
        })
        .collect();
    if let Some(spec) = sim_fail_gate {
        let (name, after) = spec.split_once('@').ok_or_else(|| {
            Failure::Usage(format!("--sim-fail-gate takes NAME@DURATION, got {spec:?}"))
        })?;
        let after = humantime::parse_duration(after)
            .map_err(|e| Failure::Usage(format!("--sim-fail-gate {spec:?}: {e}")))?;
        let gate = gates.iter_mut().find(|g| g.name == name).ok_or_else(|| {
            Failure::Usage(format!("--sim-fail-gate: no gate {name:?} in gates.alarms"))
        })?;
        gate.script.push((
            start + after.as_millis() as u64,
            crate::model::GateState::Alarm,
        ));
    }
    let mut world = World::new(start, start, live_revision, *instances, gates);
    world.healthy_after = Some(*healthy_after_ms);
    Ok(SimCloud::new(world).ports())
}

/// SIGINT and SIGTERM, by name, for the driver to bring traffic to a safe
/// state before stopping. A second signal ends the process at once.
fn signals() -> Result<tokio::sync::watch::Receiver<Option<String>>, DriverError> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind| {
        signal(kind).map_err(|e| {
            DriverError::Port(crate::ports::PortError::new(
                "signal",
                crate::ports::ErrorKind::Invalid,
                e.to_string(),
            ))
        })
    };
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut int = install(SignalKind::interrupt())?;
    let mut term = install(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut seen = false;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if seen {
                eprintln!("{name} again: stopping now; `teal resume` continues from the ledger");
                std::process::exit(Exit::Halted.code().into());
            }
            seen = true;
            let _ = tx.send(Some(name.to_string()));
        }
    });
    Ok(rx)
}
