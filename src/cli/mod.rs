//! The command line: raw clap arguments in ([`args`]), a validated config
//! and a command out, run over the library; every path ends in a documented
//! [`Exit`]. One file per command family:
//!
//! - [`args`]: the clap types;
//! - `deploy`: `deploy` and `verify`; `green`: what the green flags say;
//! - `operate`: the operator commands, `reconcile` and `deploy --detach`;
//! - `status`, `report`, [`plan`] (`plan`, `strategies`), `demo` (`demo`, `local serve`);
//! - `release`: `release plan|deploy|status|rollback`, a release file's services as one;
//! - `session`: what every command shares besides its ports (which come from
//!   [`crate::wiring`]): the runtime, the event sink, the API-call summary, signals;
//! - [`render`] and `progress`: output.

pub mod args;
mod demo;
mod deploy;
mod green;
mod init;
mod operate;
pub mod plan;
mod progress;
mod release;
pub mod render;
mod report;
mod session;
mod site;
mod status;
mod traffic;

pub use args::{
    Cli, Command, DeployArgs, GreenArgs, LocalCommand, ReleaseCommand, ReleaseDeployArgs, Role,
};

use crate::config::{Config, ConfigError};
use crate::driver::DriverError;
use crate::exit::Exit;
use crate::sim::scenario::{render as render_run, run_seed};
use crate::wiring::WiringError;
use render::Format;
use std::io::Write;

/// A command's failure, with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Wiring(#[from] WiringError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::diag::InputError> for Failure {
    fn from(e: crate::diag::InputError) -> Failure {
        Failure::Config(e.into())
    }
}

impl Failure {
    fn exit(&self) -> Exit {
        match self {
            Failure::Config(e) => Exit::for_config_error(e),
            Failure::Driver(e) => Exit::for_driver_error(e),
            Failure::Usage(_) | Failure::Wiring(_) => Exit::BadInput,
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
    let cloud = cli.cloud();
    match cli.command {
        Command::Report { file, svg } => report::report(&file, svg.as_deref(), cli.output),
        Command::Strategies => plan::strategies(cli.output),
        Command::Init(args) => init::init(&cli.config, &args, &cloud, cli.output),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut text = vec![];
            clap_complete::generate(shell, &mut cmd, "teal", &mut text);
            print_all(&text)
        }
        Command::Man => {
            let mut text = vec![];
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut text)?;
            print_all(&text)
        }
        Command::Plan { strategy } => {
            plan::plan(&Config::load(&cli.config, strategy.as_deref())?, cli.output)
        }
        Command::Verify { strategy, green } => deploy::verify(
            &Config::load(&cli.config, strategy.as_deref())?,
            &green,
            &cloud,
            cli.output,
        ),
        Command::Deploy(args) => {
            let config = Config::load(&cli.config, args.strategy.as_deref())?;
            deploy::deploy(&config, args, &cloud, cli.output)
        }
        Command::Status { watch, interval } => status::status(
            &Config::load(&cli.config, None)?,
            &cloud,
            cli.output,
            watch.then_some(interval),
        ),
        Command::Shift { .. }
        | Command::Promote { .. }
        | Command::Pause { .. }
        | Command::Resume { .. }
        | Command::Rollback { .. }
        | Command::Approve { .. }
        | Command::Retire { .. } => {
            let (cmd, force) = cli.command.operator().expect("an operator command");
            operate::run(
                &Config::load(&cli.config, None)?,
                &cloud,
                cmd,
                force,
                cli.output,
            )
        }
        Command::Reconcile { once } => {
            operate::reconcile(&Config::load(&cli.config, None)?, &cloud, once, cli.output)
        }
        Command::Demo {
            bad,
            rolling,
            slow,
            webhook,
            webhook_format,
        } => {
            let webhook = webhook.map(|url| (url, webhook_format));
            demo::demo(bad, rolling, slow, webhook, cli.output)
        }
        Command::Local {
            command: LocalCommand::Serve { initial_revision },
        } => demo::serve(&Config::load(&cli.config, None)?, initial_revision),
        Command::DemoApp {
            port,
            revision,
            health_path,
        } => {
            let b = crate::local::app::Behaviour::parse(&revision).map_err(Failure::Usage)?;
            session::runtime()?.block_on(crate::local::app::serve(port, b, health_path))?;
            Ok(Exit::Succeeded)
        }
        Command::Release { command } => release::run(command, &cloud, cli.output),
        Command::Site { command } => site::run(command, &cloud, cli.output),
        Command::Sim {
            seed,
            runs,
            release,
        } => sim(seed, runs, release),
    }
}

/// `teal sim --seed N [--runs K] [--release]`: run simulated deployments (or
/// releases) with injected faults and judge each against the invariants; a
/// broken seed is printed.
fn sim(seed: u64, runs: u64, release: bool) -> Result<Exit, Failure> {
    use crate::sim::release::run_release_seed;
    let mut out = std::io::stdout().lock();
    let mut broken = 0;
    for s in seed..seed.saturating_add(runs) {
        let (text, bad) = match release {
            true => {
                let r = run_release_seed(s);
                (r.render(), !r.violations.is_empty())
            }
            false => {
                let r = run_seed(s);
                (render_run(&r), !r.violations.is_empty())
            }
        };
        if runs == 1 || bad {
            write!(out, "{text}")?;
        }
        broken += usize::from(bad);
    }
    let what = if release { "release seeds" } else { "seeds" };
    if runs > 1 {
        writeln!(
            out,
            "{runs} {what} from {seed}: {broken} broke an invariant"
        )?;
    }
    Ok(if broken == 0 {
        Exit::Succeeded
    } else {
        Exit::Unexpected
    })
}

/// Write generated text to stdout; a reader that stops early (`| head`) is
/// not an error.
fn print_all(text: &[u8]) -> Result<Exit, Failure> {
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(Exit::Succeeded),
    }
}
