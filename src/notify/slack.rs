//! Slack's incoming-webhook message for a notification: a `text` fallback
//! (what the phone's notification shows) and `blocks` with the service, the
//! revisions, the step, the weights, the reason, and the exact commands.
//! Limits from Slack's Block Kit reference: a header's text at most 150
//! characters, a section's 3,000, a field's 2,000.

use super::message::Notification;
use crate::events::Milestone;
use serde_json::{json, Value};

/// The Slack message for `n`.
pub fn body(n: &Notification) -> Value {
    let revision = n.revision.as_deref().unwrap_or("?");
    let what = match n.kind {
        Milestone::Started => "deployment started",
        Milestone::Step => "step reached",
        Milestone::AwaitingApproval => "waiting for approval",
        Milestone::Approved => "approved",
        Milestone::Judgment => "analysis verdict",
        Milestone::RollingBack => "rolling back",
        Milestone::RolledBack => "rolled back",
        Milestone::Halted => "halted",
        Milestone::Succeeded => "succeeded",
    };
    let title = format!("teal · {} {revision}: {what}", n.service);
    let mut fields = vec![
        field("Service", &n.service),
        field(
            "Revision",
            &match &n.blue_revision {
                Some(b) => format!("{revision} (blue: {b})"),
                None => revision.to_string(),
            },
        ),
    ];
    if let Some(step) = n.step {
        let of = match n.steps.len() {
            0 => String::new(),
            k => format!("/{k}"),
        };
        fields.push(field("Step", &format!("{step}{of}")));
    }
    if let Some(w) = n.weights {
        fields.push(field(
            "Weights",
            &format!("blue {}% · green {}%", w.blue, w.green),
        ));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&n.text, 3000)}, "fields": fields}),
    ];
    if let Some(r) = &n.reason {
        blocks.push(section(&format!("*Reason*\n{r}")));
    }
    let mut commands = vec![];
    if let Some(c) = &n.commands.approve {
        commands.push(format!("Approve: `{c}`"));
    }
    if let Some(c) = &n.commands.rollback {
        commands.push(format!("Roll back: `{c}`"));
    }
    commands.push(format!("Status: `{}`", n.commands.status));
    blocks.push(section(&commands.join("\n")));
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("deployment {} · {}", n.deployment, n.time)}
    ]}));
    json!({"text": cut(&n.text, 3000), "blocks": blocks})
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": cut(&format!("*{name}*\n{value}"), 2000)})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}})
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max - 1) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
