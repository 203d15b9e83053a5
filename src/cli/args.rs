//! The command line as clap parses it: raw arguments, before any file is read.

use super::render::Format;
use crate::engine::Command as EngineCommand;
use crate::wiring::Cloud;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// teal: blue/green traffic shifting for ECS and EC2 behind ALB or Route 53.
#[derive(Debug, Parser)]
#[command(
    name = "teal",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TEAL_COMMIT"), ")"),
    about,
    long_about = None
)]
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
    /// Write a commented teal.toml (--config, default ./teal.toml) from an
    /// ECS service, an Auto Scaling group or a listener that runs now;
    /// read-only unless --create-target-group.
    Init(super::init::InitArgs),
    /// Print a shell's completion script for teal (e.g. `teal completions bash >
    /// /etc/bash_completion.d/teal`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print teal's man page (roff), e.g. `teal man > teal.1`.
    Man,
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
    /// Let a step that waits for approval go on (`teal rollback` refuses it instead).
    Approve {
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
        /// Deploy a green several times slower than blue (150 ms to 20 ms), under the p99 gate's
        /// threshold: only canary analysis, comparing it with blue, catches it.
        #[arg(long, conflicts_with_all = ["bad", "rolling"])]
        slow: bool,
        /// Also tell a webhook of the deployment's milestones (`[notify]`), e.g.
        /// a Slack incoming webhook's URL with `--webhook-format slack`.
        #[arg(long, env = "TEAL_DEMO_WEBHOOK", hide_env_values = true)]
        webhook: Option<String>,
        /// The webhook's body: `json` (teal's notification) or `slack`.
        #[arg(long, default_value = "json", value_parser = ["json", "slack"], requires = "webhook")]
        webhook_format: String,
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
    /// A static site's build: `teal site check` (version skew, as a `before_traffic` hook),
    /// `teal site serve` (one build over HTTP, the local provider's instance of a site).
    Site {
        /// What to do.
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Several services deployed as one, in ordered waves, by this one process: `plan`,
    /// `deploy`, `status`, `rollback` of a release file (`teal release plan shop.toml`).
    Release {
        /// What to do.
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Replay simulated deployments by seed, with fault injection and invariant checks.
    Sim {
        /// First seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How many seeds from there.
        #[arg(long, default_value_t = 1)]
        runs: u64,
        /// Simulate releases (several services in waves, one runner) instead of single deployments.
        #[arg(long)]
        release: bool,
    },
}

impl Command {
    /// An operator command as the engine's command and its `--force`.
    pub(super) fn operator(&self) -> Option<(EngineCommand, bool)> {
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
            Command::Approve { force } => (EngineCommand::Approve, force),
            _ => return None,
        })
    }
}

/// `teal release ...`: each takes the release file (default `release.toml`).
#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// The waves, each member's schedule and the failure policy; no cloud call.
    Plan {
        /// The release file.
        #[arg(default_value = "release.toml")]
        file: PathBuf,
    },
    /// Deploy every member, wave by wave: each wave starts once every member of the one
    /// before holds all traffic on green; a failure applies the release's `on_failure`.
    Deploy(ReleaseDeployArgs),
    /// The latest run of the release, read from each member's record: every member's state,
    /// the wave under way, the outcome. Read-only, from any machine.
    Status {
        /// The release file.
        #[arg(default_value = "release.toml")]
        file: PathBuf,
    },
    /// Send every member of the latest run that can still go back (not yet retiring blue)
    /// back to blue now.
    Rollback {
        /// The release file.
        #[arg(default_value = "release.toml")]
        file: PathBuf,
        /// Take members over even if another process's lock has not expired.
        #[arg(long)]
        force: bool,
    },
}

/// `teal release deploy` arguments.
#[derive(Debug, clap::Args)]
pub struct ReleaseDeployArgs {
    /// The release file.
    #[arg(default_value = "release.toml")]
    pub file: PathBuf,
    /// Every member's revision label [default: $CODEBUILD_RESOLVED_SOURCE_VERSION, else each
    /// member's image tag].
    #[arg(long, env = "CODEBUILD_RESOLVED_SOURCE_VERSION")]
    pub revision: Option<String>,
    /// ECS members: one imagedefinitions.json for the whole release, split by container name
    /// (each member takes its `containers`, else its `[fleet] container`).
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    pub image_definitions: Option<PathBuf>,
    /// ECS members: every member's configured container runs this image (one image, many services).
    #[arg(long)]
    pub image: Option<String>,
    /// Auto Scaling members: green runs this version of blue's launch template.
    #[arg(long, conflicts_with = "ami")]
    pub launch_template_version: Option<String>,
    /// Auto Scaling members: green runs a new launch template version with this AMI.
    #[arg(long)]
    pub ami: Option<String>,
    /// Simulated members only: this member's gate goes to ALARM this long after the release starts
    /// (SERVICE:NAME@DURATION; repeatable).
    #[arg(long, value_name = "SERVICE:NAME@DURATION")]
    pub sim_fail_gate: Vec<String>,
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

/// `teal site ...`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// List the files the old build's index.html references that the new build lacks: what a
    /// browser that loaded the old page asks green for after the switch (exit 2 if any, or if
    /// a build is missing or empty; 0 if none). As a hook:
    /// `before_traffic = "teal site check --old builds/$TEAL_BLUE_REVISION --new builds/$TEAL_REVISION"`.
    Check {
        /// The build blue serves.
        #[arg(long, value_name = "DIR")]
        old: std::path::PathBuf,
        /// The build to deploy.
        #[arg(long, value_name = "DIR")]
        new: std::path::PathBuf,
    },
    /// Upload a build to its revision's prefix of an S3 bucket (`s3://bucket/site/<revision>/`),
    /// with content types and cache headers (index.html no-cache, hashed assets immutable);
    /// files already there are skipped, the prefix is listed to check every file landed.
    /// A missing or empty build, or a bucket that does not exist, is exit 2 before any write.
    Publish {
        /// The build directory (the front end's `dist/`).
        #[arg(long, value_name = "DIR")]
        dir: std::path::PathBuf,
        /// Where the revisions live: `s3://BUCKET/PREFIX` (each under `PREFIX/<revision>/`).
        #[arg(long, value_name = "S3_URL")]
        to: String,
        /// The revision: the name of its prefix (letters, digits, `-_.+`).
        #[arg(long)]
        revision: String,
        /// Copy this revision's content-hashed assets that the build lacks into the new prefix
        /// (blue's: pages loaded before the switch keep finding them).
        #[arg(long, value_name = "REVISION")]
        carry_from: Option<String>,
        /// Then delete revisions past the newest N (never --revision or --carry-from).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
        /// With --keep: never delete a revision this CloudFront distribution, or its staging
        /// copy, serves (repeatable).
        #[arg(long, value_name = "ID", requires = "keep")]
        distribution: Vec<String>,
    },
    /// Serve one build on 127.0.0.1 until SIGTERM (`[fleet] site = ...` runs this per instance).
    Serve {
        /// The build directory.
        #[arg(long, value_name = "DIR")]
        root: std::path::PathBuf,
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
        /// The revision, in an `x-revision` header of every answer.
        #[arg(long)]
        revision: String,
        /// Health path.
        #[arg(long, default_value = "/healthz")]
        health_path: String,
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
#[derive(Debug, Clone, Default, clap::Args)]
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
    /// Auto Scaling: green runs the AMI that the last run recorded in this Packer manifest
    /// (the manifest post-processor's file) built in the region (--region, else $AWS_REGION).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ami", "launch_template_version"])]
    pub packer_manifest: Option<std::path::PathBuf>,
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

impl Cli {
    /// Where AWS is reached, from `--region` and `--profile`.
    pub fn cloud(&self) -> Cloud {
        Cloud {
            region: self.region.clone(),
            profile: self.profile.clone(),
        }
    }
}
