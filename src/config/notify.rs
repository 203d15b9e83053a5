//! `[notify]`: who is told about a deployment's milestones, and which.
//!
//! ```toml
//! [notify]
//! events = ["awaiting_approval", "rolled_back", "halted", "succeeded"]  # every target's default
//!
//! [[notify.sns]]
//! topic_arn = "arn:aws:sns:eu-west-1:123456789012:deploys"
//!
//! [[notify.eventbridge]]
//! bus = "default"                     # a bus name or ARN
//!
//! [[notify.webhook]]
//! url_env = "SLACK_WEBHOOK_URL"       # or url = "https://..."
//! format = "slack"                    # or "json" (the default)
//! events = ["awaiting_approval"]      # this target's own filter
//! ```
//!
//! A webhook URL is a secret: it is read from the environment when the file
//! is loaded, kept in a [`Secret`] that prints as `<secret>`, and named in
//! messages by its variable (or its place in the file), never by its value.

use super::fields::non_empty;
use crate::diag::{InputError, SourceFile};
use crate::events::Milestone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;

/// `[notify]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// The milestones every target is told about, unless it names its own.
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[[notify.sns]]`
    #[serde(default)]
    pub sns: Vec<RawSns>,
    /// `[[notify.eventbridge]]`
    #[serde(default)]
    pub eventbridge: Vec<RawEventBridge>,
    /// `[[notify.webhook]]`
    #[serde(default)]
    pub webhook: Vec<RawWebhook>,
}

/// `[[notify.sns]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    /// `arn:aws:sns:REGION:ACCOUNT:NAME`
    pub topic_arn: Spanned<String>,
    /// This target's milestones.
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[notify.eventbridge]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventBridge {
    /// A bus name or ARN (default: the account's `default` bus).
    pub bus: Option<Spanned<String>>,
    /// This target's milestones.
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[notify.webhook]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// The URL itself (better kept out of the file: see `url_env`).
    pub url: Option<Spanned<String>>,
    /// The environment variable that holds the URL.
    pub url_env: Option<Spanned<String>>,
    /// `json` (the default) or `slack`.
    pub format: Option<Spanned<String>>,
    /// This target's milestones.
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[notify]`, validated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotifyConfig {
    /// Each target, in the file's order (SNS, EventBridge, webhooks).
    pub targets: Vec<Target>,
    /// Webhooks whose `url_env` is not set here: where, which field, why.
    /// Only a command that drives a deployment needs them
    /// ([`NotifyConfig::check`]); `teal approve` from a laptop without the
    /// secret must not be refused for it.
    #[serde(skip)]
    unset: Vec<(Range<usize>, String, String)>,
}

impl NotifyConfig {
    /// Refuse a webhook whose environment variable is not set (exit 2,
    /// located in `file`): for the commands that drive a deployment.
    pub fn check(&self, file: &SourceFile) -> Result<(), InputError> {
        match self.unset.first() {
            Some((span, field, message)) => Err(file.error(span.clone(), field, message)),
            None => Ok(()),
        }
    }
}

/// One place notifications go, and which milestones it is told about.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Where.
    pub to: Destination,
    /// Which milestones.
    pub milestones: BTreeSet<Milestone>,
}

/// Where a target's notifications go.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// An SNS topic (`Publish`).
    Sns {
        /// The topic.
        topic_arn: String,
    },
    /// An EventBridge bus (`PutEvents`).
    EventBridge {
        /// The bus's name or ARN.
        bus: String,
    },
    /// An HTTP(S) endpoint that takes a POSTed JSON body.
    Webhook {
        /// The URL; `None` when its environment variable is not set here.
        url: Option<Secret>,
        /// What is said where: the variable or the file's field, never the URL.
        label: String,
        /// The body's shape.
        format: WebhookFormat,
    },
}

impl Destination {
    /// The destination in words, safe to print (a webhook by its label).
    pub fn describe(&self) -> String {
        match self {
            Destination::Sns { topic_arn } => format!("SNS topic {topic_arn}"),
            Destination::EventBridge { bus } => format!("EventBridge bus {bus}"),
            Destination::Webhook { label, format, .. } => {
                format!("{} webhook {label}", format.name())
            }
        }
    }

    /// Whether AWS is called (an AWS-less provider cannot reach it).
    pub fn is_aws(&self) -> bool {
        !matches!(self, Destination::Webhook { .. })
    }
}

/// A webhook body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// teal's notification object, as SNS and EventBridge carry it.
    Json,
    /// Slack's incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl WebhookFormat {
    /// `json` or `slack`.
    pub fn name(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }
}

/// A value that must not be shown: it prints and serializes as `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// Validate `[notify]`. `env` reads an environment variable (the process's
/// own in production; a map in tests).
pub(super) fn validate_notify(
    file: &SourceFile,
    raw: &RawNotify,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NotifyConfig, InputError> {
    let default = match &raw.events {
        Some(list) => milestones(file, list, "notify.events")?,
        None => Milestone::ALL.into_iter().collect(),
    };
    let own = |list: &Option<Spanned<Vec<Spanned<String>>>>, field: String| match list {
        Some(list) => milestones(file, list, &field),
        None => Ok(default.clone()),
    };
    let mut targets = vec![];
    let mut unset = vec![];
    for (i, t) in raw.sns.iter().enumerate() {
        let field = format!("notify.sns[{i}]");
        targets.push(Target {
            to: Destination::Sns {
                topic_arn: topic_arn(file, &t.topic_arn, &format!("{field}.topic_arn"))?,
            },
            milestones: own(&t.events, format!("{field}.events"))?,
        });
    }
    for (i, t) in raw.eventbridge.iter().enumerate() {
        let field = format!("notify.eventbridge[{i}]");
        let bus = match &t.bus {
            Some(b) => event_bus(file, b, &format!("{field}.bus"))?,
            None => "default".to_string(),
        };
        targets.push(Target {
            to: Destination::EventBridge { bus },
            milestones: own(&t.events, format!("{field}.events"))?,
        });
    }
    for (i, t) in raw.webhook.iter().enumerate() {
        let field = format!("notify.webhook[{i}]");
        targets.push(Target {
            to: webhook(file, t, &field, env, &mut unset)?,
            milestones: own(&t.events, format!("{field}.events"))?,
        });
    }
    Ok(NotifyConfig { targets, unset })
}

fn milestones(
    file: &SourceFile,
    list: &Spanned<Vec<Spanned<String>>>,
    field: &str,
) -> Result<BTreeSet<Milestone>, InputError> {
    if list.get_ref().is_empty() {
        return Err(file.error(
            list.span(),
            field,
            "an empty list tells nobody anything; leave the field out for every milestone",
        ));
    }
    list.get_ref()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Milestone::parse(name.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Milestone::ALL.iter().map(|m| m.name()).collect();
                file.error(
                    name.span(),
                    &format!("{field}[{i}]"),
                    format!(
                        "unknown event kind {:?}: one of {}",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, NAME 1 to 256 of `A-Z a-z 0-9 _ -`
/// (a FIFO topic's ends in `.fifo`), as the SNS API reference's CreateTopic says.
fn topic_arn(file: &SourceFile, v: &Spanned<String>, field: &str) -> Result<String, InputError> {
    let s = v.get_ref();
    let parts: Vec<&str> = s.split(':').collect();
    let name_ok = |n: &str| {
        let base = n.strip_suffix(".fifo").unwrap_or(n);
        (1..=256).contains(&n.len())
            && base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !base.is_empty()
    };
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && partition_ok(parts[1])
        && parts[2] == "sns"
        && region_ok(parts[3])
        && account_ok(parts[4])
        && name_ok(parts[5]);
    if !ok {
        return Err(file.error(
            v.span(),
            field,
            format!("expected a topic ARN like arn:aws:sns:REGION:ACCOUNT:NAME, got {s:?}"),
        ));
    }
    Ok(s.clone())
}

/// A bus name (1 to 256 of `A-Z a-z 0-9 / . - _`) or
/// `arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME`.
fn event_bus(file: &SourceFile, v: &Spanned<String>, field: &str) -> Result<String, InputError> {
    let s = v.get_ref();
    let name_ok = |n: &str| {
        (1..=256).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/.-_".contains(c))
    };
    let ok = match s.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = s.splitn(6, ':').collect();
            parts.len() == 6
                && partition_ok(parts[1])
                && parts[2] == "events"
                && region_ok(parts[3])
                && account_ok(parts[4])
                && parts[5].strip_prefix("event-bus/").is_some_and(name_ok)
        }
        None => name_ok(s),
    };
    if !ok {
        return Err(file.error(
            v.span(),
            field,
            format!(
                "expected an event bus name (letters, digits, '/', '.', '-', '_') or an ARN like \
                 arn:aws:events:REGION:ACCOUNT:event-bus/NAME, got {s:?}"
            ),
        ));
    }
    Ok(s.clone())
}

fn partition_ok(p: &str) -> bool {
    p == "aws" || p.starts_with("aws-")
}

fn region_ok(r: &str) -> bool {
    !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn account_ok(a: &str) -> bool {
    a.len() == 12 && a.chars().all(|c| c.is_ascii_digit())
}

fn webhook(
    file: &SourceFile,
    t: &RawWebhook,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<(Range<usize>, String, String)>,
) -> Result<Destination, InputError> {
    let format = match &t.format {
        None => WebhookFormat::Json,
        Some(f) => match f.get_ref().as_str() {
            "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            other => {
                return Err(file.error(
                    f.span(),
                    &format!("{field}.format"),
                    format!("unknown format {other:?}: \"json\" or \"slack\""),
                ))
            }
        },
    };
    let (url, label, span) =
        match (&t.url, &t.url_env) {
            (Some(u), None) => (u.get_ref().clone(), format!("{field}.url"), u.span()),
            (None, Some(var)) => {
                let name = non_empty(file, var, &format!("{field}.url_env"))?;
                let Some(value) = env(&name).filter(|v| !v.trim().is_empty()) else {
                    unset.push((
                        var.span(),
                        format!("{field}.url_env"),
                        format!(
                            "the environment variable {name} that holds the webhook URL is not set"
                        ),
                    ));
                    return Ok(Destination::Webhook {
                        url: None,
                        label: format!("${name}"),
                        format,
                    });
                };
                (value.trim().to_string(), format!("${name}"), var.span())
            }
            (Some(u), Some(_)) => {
                return Err(file.error(
                    u.span(),
                    field,
                    "give the URL once: `url` or `url_env`, not both",
                ))
            }
            (None, None) => return Err(file.error(
                whole(file, field),
                field,
                "a webhook needs `url_env` (the environment variable that holds its URL) or `url`",
            )),
        };
    check_url(&url).map_err(|why| {
        // The value is a secret: say what is wrong with it, never what it is.
        file.error(
            span.clone(),
            &format!(
                "{field}.{}",
                if t.url.is_some() { "url" } else { "url_env" }
            ),
            format!("the webhook URL in {label} {why}"),
        )
    })?;
    Ok(Destination::Webhook {
        url: Some(Secret::new(url)),
        label,
        format,
    })
}

/// Whether `url` is an absolute http(s) URL with a host.
fn check_url(url: &str) -> Result<(), &'static str> {
    let uri: hyper::Uri = url.parse().map_err(|_| "is not an http(s) URL")?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("is not an http(s) URL"),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("has no host"),
    }
}

/// Where to point when a webhook table lacks a field: the `[[notify.webhook]]`
/// header of that table (found by counting), else the file's start.
fn whole(file: &SourceFile, field: &str) -> Range<usize> {
    let n: usize = field
        .rsplit('[')
        .next()
        .and_then(|s| s.trim_end_matches(']').parse().ok())
        .unwrap_or(0);
    let header = "[[notify.webhook]]";
    file.text
        .match_indices(header)
        .nth(n)
        .map(|(at, _)| at..at + header.len())
        .unwrap_or(0..0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<NotifyConfig, InputError> {
        #[derive(Deserialize)]
        struct Doc {
            notify: RawNotify,
        }
        let file = SourceFile::new("teal.toml", text.to_string());
        let doc: Doc = toml::from_str(text).map_err(|e| file.toml_error(&e))?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate_notify(&file, &doc.notify, &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn error(text: &str, env: &[(&str, &str)]) -> String {
        let file = SourceFile::new("teal.toml", text.to_string());
        match parse(text, env) {
            Err(e) => e.to_string(),
            Ok(n) => n.check(&file).unwrap_err().to_string(),
        }
    }

    #[test]
    fn targets_take_the_section_filter_unless_they_name_their_own() {
        let n = parse(
            r#"
[notify]
events = ["succeeded", "rolled_back"]
[[notify.sns]]
topic_arn = "arn:aws:sns:eu-west-1:123456789012:deploys"
[[notify.eventbridge]]
[[notify.webhook]]
url_env = "HOOK"
format = "slack"
events = ["awaiting_approval"]
"#,
            &[("HOOK", "https://hooks.slack.com/services/T/B/secret")],
        )
        .unwrap();
        assert_eq!(n.targets.len(), 3);
        let names = |t: &Target| t.milestones.iter().map(|m| m.name()).collect::<Vec<_>>();
        assert_eq!(names(&n.targets[0]), ["rolled_back", "succeeded"]);
        assert!(matches!(&n.targets[1].to, Destination::EventBridge { bus } if bus == "default"));
        assert_eq!(names(&n.targets[2]), ["awaiting_approval"]);
        // The URL is nowhere in what the config shows of itself.
        let shown = format!("{n:?} {}", serde_json::to_string(&n).unwrap());
        assert!(!shown.contains("hooks.slack.com"), "{shown}");
        assert_eq!(n.targets[2].to.describe(), "slack webhook $HOOK");
    }

    #[test]
    fn bad_targets_are_located_and_named() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 8] = [
            (
                "[[notify.sns]]\ntopic_arn = \"arn:aws:sqs:eu-west-1:123456789012:q\"\n",
                &[],
                "teal.toml:2:13: notify.sns[0].topic_arn: expected a topic ARN",
            ),
            (
                "[[notify.sns]]\ntopic_arn = \"arn:aws:sns:eu-west-1:12345:t\"\n",
                &[],
                "notify.sns[0].topic_arn",
            ),
            (
                "[[notify.eventbridge]]\nbus = \"arn:aws:events:eu-west-1:123456789012:rule/x\"\n",
                &[],
                "teal.toml:2:7: notify.eventbridge[0].bus: expected an event bus name",
            ),
            (
                "[notify]\nevents = [\"started\", \"deployed\"]\n",
                &[],
                "teal.toml:2:22: notify.events[1]: unknown event kind \"deployed\"",
            ),
            (
                "[[notify.webhook]]\nurl = \"ftp://example.com/x\"\n",
                &[],
                "teal.toml:2:7: notify.webhook[0].url: the webhook URL in notify.webhook[0].url is not an http(s) URL",
            ),
            (
                "[[notify.webhook]]\nurl_env = \"NOT_SET\"\n",
                &[],
                "teal.toml:2:11: notify.webhook[0].url_env: the environment variable NOT_SET",
            ),
            (
                "[[notify.webhook]]\nurl_env = \"HOOK\"\n",
                &[("HOOK", "hooks.example.com/secret-path")],
                "the webhook URL in $HOOK is not an http(s) URL",
            ),
            (
                "[[notify.webhook]]\nformat = \"teams\"\n",
                &[],
                "teal.toml:2:10: notify.webhook[0].format: unknown format \"teams\"",
            ),
        ];
        for (text, env, want) in cases {
            let got = error(text, env);
            assert!(got.contains(want), "{text}\nwant {want}\ngot  {got}");
            assert!(!got.contains("secret-path"), "a URL in an error: {got}");
        }
        assert!(error("[[notify.webhook]]\n", &[]).contains("teal.toml:1:1: notify.webhook[0]"));
    }
}
