//! Operator commands (`shift`, `promote`, `pause`, `resume`, `rollback`,
//! `retire`), `reconcile --once` and `deploy --detach`: every one works from
//! a fresh process on any machine, through the ledger.
//!
//! When another process drives the deployment (its lock is live), a command
//! is queued in the record and this process waits for that driver's answer;
//! it never steals a live lock unless told to with `--force`. When no process
//! drives it, this one takes it over, applies the command, and makes one
//! reconcile pass (to the end, for `resume`, `rollback` and `retire`).

use super::render::{self, CliLine, Format, ReconcileState, RequestState};
use super::session::{event_sink, owner, report_calls, runtime, signals};
use super::Failure;
use crate::config::Config;
use crate::driver::{submit, Driver, DriverError, Progress, Settings, Submitted};
use crate::engine::{Command, Record};
use crate::exit::Exit;
use crate::model::{fmt_ms, fmt_time, Millis};
use crate::ports::{Clock, Ledger, Ports};
use crate::wiring::Cloud;
use std::time::Duration;

/// How often a waiting sender reads the record.
const REPLY_POLL: Duration = Duration::from_secs(1);
/// Slack over two of the driver's polls before a queued command counts as
/// not picked up (a live driver reads the record once per poll).
const REPLY_SLACK_MS: Millis = 5_000;
/// How long `rollback` follows a queued rollback to its end.
const ROLLBACK_FOLLOW_MS: Millis = 15 * 60_000;

/// Run an operator command against the recorded deployment.
pub(super) fn run(
    config: &Config,
    cloud: &Cloud,
    cmd: Command,
    force: bool,
    format: Format,
) -> Result<Exit, Failure> {
    // A share the router cannot give (CloudFront's staging distribution
    // takes at most 15%) is bad input, refused before anything is read.
    if let (Command::Shift { green, .. }, Some(max)) = (&cmd, config.router.max_partial_weight()) {
        if *green > max && *green < 100 {
            return Err(Failure::Usage(format!(
                "shift: green {green}%: router.kind = {:?} gives green at most {max}% short of \
                 all traffic; shift to {max}% or less, or promote",
                config.router.kind()
            )));
        }
    }
    runtime()?.block_on(async {
        let mut wired = crate::wiring::wire(config, cloud, None).await?;
        let mut settings = Settings::new(owner());
        settings.force = force;
        settings.identity = wired.identity().await;
        let delivery = wired.start_notifying();
        let result = operate(wired.ports.clone(), settings, cmd, &delivery, format).await;
        delivery.finish().await;
        report_calls(&wired, None, format);
        result
    })
}

pub(super) async fn operate(
    ports: Ports,
    settings: Settings,
    cmd: Command,
    delivery: &crate::notify::Delivery,
    format: Format,
) -> Result<Exit, Failure> {
    let ledger = ports.ledger.clone();
    let clock = ports.clock.clone();
    let (ports_again, settings_again) = (ports.clone(), settings.clone());
    // `resume` of a deployment with no hold continues it: no command to apply.
    if cmd == Command::Resume {
        let rec = ledger
            .load()
            .await
            .map_err(DriverError::Port)?
            .ok_or(DriverError::NoDeployment)?;
        if rec.hold.is_none() || !rec.in_flight() {
            let driver = Driver::resume(ports, settings, delivery.wrap(event_sink(format))).await?;
            return drive_to_end(driver).await;
        }
    }
    match submit(ports, settings, cmd, delivery.wrap(event_sink(format))).await? {
        Submitted::TookOver(driver) => {
            let mut driver = *driver;
            say(
                format,
                request(
                    RequestState::Applied,
                    cmd,
                    Some(driver.record().id.clone()),
                    None,
                    None,
                ),
                format!(
                    "`teal {}` applied to deployment {}",
                    cmd.name(),
                    driver.record().id
                ),
            );
            match cmd {
                Command::Resume | Command::Rollback | Command::Retire => drive_to_end(driver).await,
                _ => detached(&mut driver, format).await.map_err(Failure::from),
            }
        }
        Submitted::Queued { id, owner } => {
            let rec = ledger.load().await.map_err(DriverError::Port)?;
            let poll = rec.as_ref().map_or(10_000, |r| r.plan.poll_ms);
            let timeout = 2 * poll + REPLY_SLACK_MS;
            say(
                format,
                request(RequestState::Queued, cmd, None, Some(id.clone()), Some(owner.clone())),
                format!(
                    "`teal {}` queued for {owner}, which drives the deployment; waiting for it to apply (at most {})",
                    cmd.name(),
                    fmt_ms(timeout)
                ),
            );
            let start = clock.now();
            let reply = loop {
                let rec = ledger.load().await.map_err(DriverError::Port)?;
                if let Some(r) = rec
                    .as_ref()
                    .and_then(|r| r.replies.iter().find(|r| r.id == id))
                {
                    break Some(r.clone());
                }
                if clock.now() >= start + timeout {
                    break None;
                }
                tokio::time::sleep(REPLY_POLL).await;
            };
            let Some(reply) = reply else {
                let withdrawn = withdraw(ledger.as_ref(), &id).await;
                if cmd == Command::Rollback && withdrawn {
                    // The way back to blue does not wait for a driver that
                    // does not answer (killed, or stuck): take it over. Should
                    // it still live, its next record write fails and it stops.
                    say(
                        format,
                        request(
                            RequestState::TakingOver,
                            cmd,
                            None,
                            Some(id.clone()),
                            Some(owner.clone()),
                        ),
                        format!(
                            "{owner} did not answer within {}; taking the deployment over",
                            fmt_ms(timeout)
                        ),
                    );
                    let mut settings = settings_again;
                    settings.force = true;
                    return Box::pin(operate(ports_again, settings, cmd, delivery, format)).await;
                }
                return Err(Failure::Driver(DriverError::LockLost(format!(
                    "{owner} did not pick up `teal {}` within {}{}; it may be stuck: `teal {} --force` takes the deployment over",
                    cmd.name(),
                    fmt_ms(timeout),
                    if withdrawn { " (the request is withdrawn)" } else { "" },
                    cmd.name()
                ))));
            };
            if !reply.applied {
                return Err(Failure::Usage(format!(
                    "refused by {owner}: {}",
                    reply.message
                )));
            }
            say(
                format,
                request(
                    RequestState::Applied,
                    cmd,
                    None,
                    Some(id.clone()),
                    Some(owner.clone()),
                ),
                format!("{owner}: {}", reply.message),
            );
            if cmd == Command::Rollback {
                return follow_to_end(ledger.as_ref(), clock.as_ref(), format).await;
            }
            Ok(Exit::Succeeded)
        }
    }
}

/// Run a taken-over deployment to its end, stopping safely on a signal.
async fn drive_to_end(driver: Driver) -> Result<Exit, Failure> {
    let mut driver = driver.with_signals(signals()?);
    Ok(Exit::for_outcome(&driver.run().await?))
}

/// One pass, then leave the deployment to `reconcile --once` or `resume`.
pub(super) async fn detached(driver: &mut Driver, format: Format) -> Result<Exit, DriverError> {
    match driver.pass().await? {
        Progress::Done(outcome) => Ok(Exit::for_outcome(&outcome)),
        _ => {
            let rec = driver.record();
            say(
                format,
                CliLine::Detached { deployment: rec.id.clone(), phase: rec.phase.name().to_string() },
                format!(
                    "deployment {} left at {}; no process watches its gates until `teal reconcile --once` (scheduled) or `teal resume` drives it on",
                    rec.id,
                    rec.phase.name()
                ),
            );
            if format == Format::Text {
                // The id alone on a line, for scripts.
                println!("{}", rec.id);
            }
            Ok(Exit::Succeeded)
        }
    }
}

/// `teal reconcile [--once]`.
pub(super) fn reconcile(
    config: &Config,
    cloud: &Cloud,
    once: bool,
    format: Format,
) -> Result<Exit, Failure> {
    config.check_driving()?;
    runtime()?.block_on(async {
        let mut wired = crate::wiring::wire(config, cloud, None).await?;
        let ports = wired.ports.clone();
        let delivery = wired.start_notifying();
        let result = async {
            let sink = delivery.wrap(event_sink(format));
            let driver = match Driver::resume(ports, Settings::new(owner()), sink).await {
                // A scheduled job finding nothing to do is not a failure.
                Err(DriverError::NoDeployment) => {
                    say(
                        format,
                        CliLine::Reconcile {
                            state: ReconcileState::None,
                            deployment: None,
                            driver: None,
                        },
                        format!(
                            "no deployment is recorded for {}; nothing to do",
                            config.service
                        ),
                    );
                    return Ok(Exit::Succeeded);
                }
                Err(DriverError::LockHeld { id, owner, .. }) => {
                    say(
                        format,
                        CliLine::Reconcile {
                            state: ReconcileState::Skipped,
                            deployment: Some(id.clone()),
                            driver: Some(owner.clone()),
                        },
                        format!("deployment {id} is driven by {owner}; nothing to do"),
                    );
                    return Ok(Exit::Succeeded);
                }
                other => other?,
            };
            if !driver.record().in_flight() {
                say(
                    format,
                    CliLine::Reconcile {
                        state: ReconcileState::Ended,
                        deployment: Some(driver.record().id.clone()),
                        driver: None,
                    },
                    format!("deployment {} has ended; nothing to do", driver.record().id),
                );
                return Ok(Exit::Succeeded);
            }
            let mut driver = driver.with_signals(signals()?);
            if once {
                detached(&mut driver, format).await.map_err(Failure::from)
            } else {
                Ok(Exit::for_outcome(&driver.run().await?))
            }
        }
        .await;
        delivery.finish().await;
        report_calls(&wired, None, format);
        result
    })
}

/// Take a request back out of the inbox, if it is still there.
async fn withdraw(ledger: &dyn Ledger, id: &str) -> bool {
    for _ in 0..3 {
        let Ok(Some(mut rec)) = ledger.load().await else {
            return false;
        };
        let before = rec.inbox.len();
        rec.inbox.retain(|r| r.id != id);
        if rec.inbox.len() == before {
            return false;
        }
        if ledger.store(&rec).await.is_ok() {
            return true;
        }
    }
    false
}

/// Follow the record until the deployment ends; its outcome is the exit.
async fn follow_to_end(
    ledger: &dyn Ledger,
    clock: &dyn Clock,
    format: Format,
) -> Result<Exit, Failure> {
    let start = clock.now();
    loop {
        let rec: Option<Record> = ledger.load().await.map_err(DriverError::Port)?;
        if let Some((id, crate::engine::Phase::Done { outcome, at })) = rec.map(|r| (r.id, r.phase))
        {
            // The driver's own `finished` event, as this process saw it.
            let finished = crate::events::Event {
                at,
                deployment: id,
                kind: crate::events::EventKind::Finished {
                    outcome: outcome.clone(),
                    calls: Default::default(),
                },
            };
            match format {
                Format::Json => {
                    let _ = render::write_event(&mut std::io::stdout().lock(), format, &finished);
                }
                Format::Text => println!("{}  outcome: {outcome}", fmt_time(at)),
            }
            return Ok(Exit::for_outcome(&outcome));
        }
        if clock.now() >= start + ROLLBACK_FOLLOW_MS {
            return Err(Failure::Usage(
                "the rollback was applied but has not finished; `teal status` shows where it is"
                    .into(),
            ));
        }
        tokio::time::sleep(REPLY_POLL).await;
    }
}

/// One line for people, or one JSON object.
fn say(format: Format, line: CliLine, text: String) {
    match format {
        Format::Json => {
            let _ = render::write_json(&mut std::io::stdout().lock(), &line);
        }
        Format::Text => println!("{}  {text}", fmt_time(crate::ports::SystemClock.now())),
    }
}

/// The sender's report on an operator command.
fn request(
    state: RequestState,
    cmd: Command,
    deployment: Option<String>,
    request: Option<String>,
    driver: Option<String>,
) -> CliLine {
    CliLine::Request {
        state,
        command: cmd.name().to_string(),
        deployment,
        request,
        driver,
    }
}
