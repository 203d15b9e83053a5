//! Notifications: a deployment's milestones told where teams already look
//! (SNS, EventBridge, webhooks such as Slack's), from `[notify]`.
//!
//! The driver knows nothing of them: [`Delivery::wrap`] wraps the event
//! sink it is given, and every event the driver emits passes through a
//! [`Story`] that turns milestones into [`Notification`]s, queued for each
//! channel whose filter takes them. The sink never waits: delivery runs in
//! a task per channel ([`deliver`]), retried with backoff, and a channel that
//! cannot be reached is reported once as a `warning` event. At the end of the
//! command, [`Delivery::finish`] gives the queues a bounded time to empty.
//!
//! - [`message`]: what a notification says;
//! - [`deliver`]: one channel's queue, retries and warning;
//! - [`webhook`]: HTTP(S) POST, with the generic JSON body or Slack's
//!   ([`slack`]); SNS and EventBridge are AWS adapters (`crate::aws::notify`).
//!
//! A new kind of channel is a [`Channel`], a `[notify]` table
//! (`config::notify`) and one arm in `crate::wiring::notify::channels`, the
//! factory (in the composition root, since SNS and EventBridge are AWS
//! adapters).

pub mod deliver;
pub mod message;
pub mod slack;
pub mod webhook;

pub use message::{Notification, Story};

use crate::config::Config;
use crate::driver::EventSink;
use crate::events::{Event, EventKind, Milestone};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Somewhere notifications can be sent.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// The channel in words, safe to print (never a webhook's URL).
    fn describe(&self) -> String;
    /// Send one notification; `Err` says why it was not taken, in words
    /// that are safe to print.
    async fn send(&self, n: &Notification) -> Result<(), String>;
}

/// The channels a command's deployment notifies, not yet started.
#[derive(Default)]
pub struct Notifier {
    channels: Vec<(BTreeSet<Milestone>, Arc<dyn Channel>)>,
    service: String,
    config: String,
}

impl Notifier {
    /// Notify `channels` of `config`'s deployment.
    pub fn new(
        config: &Config,
        channels: Vec<(BTreeSet<Milestone>, Arc<dyn Channel>)>,
    ) -> Notifier {
        Notifier {
            channels,
            service: config.service.clone(),
            config: config.path.display().to_string(),
        }
    }

    /// Start each channel's delivery task (in the current tokio runtime).
    pub fn start(self) -> Delivery {
        if self.channels.is_empty() {
            return Delivery::default();
        }
        let tap = Arc::new(Tap {
            story: Mutex::new(Story::new(self.service, self.config)),
            queues: Mutex::new(vec![]),
            out: Mutex::new(None),
            last_id: Mutex::new(String::new()),
        });
        let warn: deliver::Warn = {
            let tap = tap.clone();
            Arc::new(move |message: String| {
                let e = Event {
                    at: crate::ports::Clock::now(&crate::ports::SystemClock),
                    deployment: tap.last_id.lock().expect("id").clone(),
                    kind: EventKind::Warning { message },
                };
                let out = tap.out.lock().expect("sink").clone();
                if let Some(out) = out {
                    (out.lock().expect("sink"))(&e);
                }
            })
        };
        let (done_tx, done) = watch::channel(false);
        let mut tasks = vec![];
        for (milestones, channel) in self.channels {
            let (tx, rx) = mpsc::unbounded_channel();
            tap.queues.lock().expect("queues").push((milestones, tx));
            // A channel is reported once, whatever goes wrong with it.
            let warned = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let warn = warn.clone();
            let once: deliver::Warn = Arc::new(move |m| {
                if !warned.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    warn(m)
                }
            });
            let task = tokio::spawn(deliver::run(
                channel.clone(),
                rx,
                done.clone(),
                once.clone(),
            ));
            tasks.push((task, channel.describe(), once));
        }
        Delivery {
            tap: Some(tap),
            done: Some(done_tx),
            tasks,
        }
    }
}

/// A channel's filter and the queue of its task.
type Queue = (
    BTreeSet<Milestone>,
    mpsc::UnboundedSender<Arc<Notification>>,
);

/// What the sinks share: the story so far, each channel's queue, and where
/// a channel's warning is said (the sink wrapped last).
struct Tap {
    story: Mutex<Story>,
    queues: Mutex<Vec<Queue>>,
    out: Mutex<Option<Arc<Mutex<EventSink>>>>,
    last_id: Mutex<String>,
}

/// The channels' delivery tasks: sinks are wrapped with [`Delivery::wrap`],
/// and [`Delivery::finish`] ends them when the command is done.
#[derive(Default)]
pub struct Delivery {
    tap: Option<Arc<Tap>>,
    done: Option<watch::Sender<bool>>,
    /// Each channel's task, its description, and its warn-once.
    tasks: Vec<(
        tokio::task::JoinHandle<deliver::Tally>,
        String,
        deliver::Warn,
    )>,
}

impl Delivery {
    /// The sink to give the driver: it passes every event on to `inner` and
    /// queues the milestones, never waiting. With no channel, `inner` itself.
    pub fn wrap(&self, inner: EventSink) -> EventSink {
        let Some(tap) = self.tap.clone() else {
            return inner;
        };
        let inner = Arc::new(Mutex::new(inner));
        *tap.out.lock().expect("sink") = Some(inner.clone());
        Box::new(move |e: &Event| {
            (inner.lock().expect("sink"))(e);
            tap.last_id.lock().expect("id").clone_from(&e.deployment);
            let Some(n) = tap.story.lock().expect("story").tell(e) else {
                return;
            };
            let n = Arc::new(n);
            for (milestones, queue) in tap.queues.lock().expect("queues").iter() {
                if milestones.contains(&n.kind) {
                    // A channel whose task has ended takes nothing more.
                    let _ = queue.send(n.clone());
                }
            }
        })
    }
}

/// How long the queues may take to empty once the deployment is done with:
/// one notification's attempts at most, so a channel that hangs delays the
/// command's end by this, never the deployment.
pub const FINISH_WITHIN: Duration = Duration::from_secs(15);

impl Delivery {
    /// Let the queues empty, for at most [`FINISH_WITHIN`]; a channel still
    /// sending then is given up, and said in a warning (unless it was already).
    pub async fn finish(self) -> deliver::Tally {
        let Some(done) = self.done else {
            return deliver::Tally::default();
        };
        let _ = done.send(true);
        let mut all = deliver::Tally::default();
        let deadline = tokio::time::Instant::now() + FINISH_WITHIN;
        for (mut task, channel, warn) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(t)) => {
                    all.delivered += t.delivered;
                    all.failed += t.failed;
                }
                Ok(Err(_)) | Err(_) => {
                    task.abort();
                    all.failed += 1;
                    warn(format!(
                        "notifications to {channel} still unsent {}s after the deployment was done with; \
                         given up",
                        FINISH_WITHIN.as_secs()
                    ));
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weights;

    /// A channel that keeps what it is sent, or never answers.
    struct Probe {
        hang: bool,
        got: Arc<Mutex<Vec<Milestone>>>,
    }

    #[async_trait::async_trait]
    impl Channel for Probe {
        fn describe(&self) -> String {
            format!("probe (hang: {})", self.hang)
        }
        async fn send(&self, n: &Notification) -> Result<(), String> {
            self.got.lock().unwrap().push(n.kind);
            if self.hang {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    fn event(kind: EventKind) -> Event {
        Event {
            at: 0,
            deployment: "d-1".into(),
            kind,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_channel_holds_up_neither_the_sink_nor_another_channel() {
        let probe = |hang| {
            let got: Arc<Mutex<Vec<Milestone>>> = Arc::default();
            (
                Arc::new(Probe {
                    hang,
                    got: got.clone(),
                }) as Arc<dyn Channel>,
                got,
            )
        };
        let (hanging, hung) = probe(true);
        let (working, worked) = probe(false);
        let all: BTreeSet<Milestone> = Milestone::ALL.into_iter().collect();
        let notifier = Notifier {
            channels: vec![(all.clone(), hanging), (all, working)],
            service: "web".into(),
            config: "teal.toml".into(),
        };
        let delivery = notifier.start();
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let into = seen.clone();
        let mut sink = delivery.wrap(Box::new(move |e: &Event| {
            into.lock().unwrap().push(e.clone())
        }));
        let before = tokio::time::Instant::now();
        sink(&event(EventKind::Started {
            service: "web".into(),
            revision: "v2".into(),
            blue_revision: None,
            green_slot: crate::model::Slot::B,
            strategy: "canary".into(),
            steps: vec![10, 100],
            rolling: false,
        }));
        sink(&event(EventKind::Phase {
            from: "provisioning".into(),
            to: "shifting".into(),
            detail: String::new(),
        }));
        sink(&event(EventKind::WeightsSet {
            weights: Weights::to_green(10),
        }));
        // The sink returned without waiting (the clock is paused: any wait
        // would have moved it).
        assert_eq!(tokio::time::Instant::now(), before);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            *worked.lock().unwrap(),
            [Milestone::Started, Milestone::Step]
        );
        assert_eq!(
            *hung.lock().unwrap(),
            [Milestone::Started],
            "stuck on its first"
        );

        let tally = delivery.finish().await;
        assert_eq!(tally.delivered, 2);
        let warnings: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Warning { message } => Some(message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("probe (hang: true)"), "{warnings:?}");
    }
}
