//! The ALB router: a listener's default action, or one listener rule, whose
//! forward action splits traffic between two target groups (slot A, slot B).
//!
//! A listener or rule that forwards plainly to one of the slots reads as 100/0
//! and is rewritten to a weighted forward by the first weight change. One that
//! forwards anywhere else is refused. Every other field of the actions (their
//! order, stickiness, authentication actions before the forward) is kept.
//!
//! An optional test listener is the same kind of router over another
//! listener and the same target groups: teal points it 100% at green before
//! production traffic moves, for `after_test_traffic` hooks.
//!
//! A Network Load Balancer's listener is the same router (ELBv2 gives NLB
//! listeners weighted forwards since November 2025, with the same 0..=999
//! weights and `ModifyListener`); what differs is only its preflight: the
//! listener's protocol and its target groups' must fit together
//! ([`nlb_protocols_fit`]). Weights split *new* connections: a long-lived
//! TCP connection stays where it was opened until it closes.

use crate::aws::{ApiCalls, Aws};
use crate::aws_call;
use crate::config::{Balancer, ListenerTarget};
use crate::model::{Slot, SlotWeights};
use crate::ports::{ErrorKind, PortError, Router};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
};
use aws_sdk_elasticloadbalancingv2::Client;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ALB router.
#[derive(Debug, Clone)]
pub struct AlbRouter {
    client: Client,
    calls: Arc<ApiCalls>,
    balancer: Balancer,
    target: ListenerTarget,
    target_groups: [String; 2],
    test: Option<Box<AlbRouter>>,
    shared: Option<Arc<crate::aws::shared::Shared>>,
}

/// Listener or rule ARNs described in one call when a release shares its
/// reads. AWS publishes no maximum for `ListenerArns` or `RuleArns`; 20 is
/// a conservative pick (the most `DescribeTargetGroups` takes by name).
const ARNS_PER_CALL: usize = 20;

impl AlbRouter {
    /// A router over `target` (of an ALB or an NLB) with slots
    /// `target_groups` (A, B).
    pub fn new(
        aws: &Aws,
        balancer: Balancer,
        target: ListenerTarget,
        target_groups: [String; 2],
    ) -> AlbRouter {
        AlbRouter {
            client: Client::new(&aws.sdk),
            calls: aws.calls.clone(),
            balancer,
            target,
            target_groups,
            test: None,
            shared: aws.shared.clone(),
        }
    }

    /// With a test listener forwarding to the same target groups.
    pub fn with_test_listener(mut self, listener: Option<String>) -> AlbRouter {
        self.test = listener.map(|arn| {
            Box::new(AlbRouter {
                target: ListenerTarget::Listener(arn),
                test: None,
                ..self.clone()
            })
        });
        self
    }

    /// The ELBv2 client (the ledger shares it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The ARN of the listener or rule.
    pub fn arn(&self) -> &str {
        match &self.target {
            ListenerTarget::Listener(a) | ListenerTarget::Rule(a) => a,
        }
    }

    /// The listener's default actions, or the rule's actions: in a release,
    /// from the answer every member shares (see `aws::shared`).
    async fn actions(&self) -> Result<Vec<Action>, PortError> {
        let Some(shared) = &self.shared else {
            return self.actions_now().await;
        };
        let (book, op) = match &self.target {
            ListenerTarget::Listener(_) => (&shared.listeners, "DescribeListeners"),
            ListenerTarget::Rule(_) => (&shared.rules, "DescribeRules"),
        };
        let arn = self.arn().to_string();
        let mut got = book
            .read(std::slice::from_ref(&arn), |all| self.describe_all(all))
            .await?;
        got.remove(&arn).ok_or_else(|| not_found(op, &arn))
    }

    /// The actions, read now: before a write, which must start from them.
    async fn actions_now(&self) -> Result<Vec<Action>, PortError> {
        let arn = self.arn().to_string();
        let mut got = self.describe(vec![arn.clone()]).await?;
        let op = match &self.target {
            ListenerTarget::Listener(_) => "DescribeListeners",
            ListenerTarget::Rule(_) => "DescribeRules",
        };
        got.remove(&arn).ok_or_else(|| not_found(op, &arn))
    }

    /// The actions of every listener (or every rule: the same kind as this
    /// router's) in `arns`, [`ARNS_PER_CALL`] a call. One ARN that no longer
    /// exists fails its whole call; that chunk is then read one by one, so
    /// that only its own member finds it missing.
    async fn describe_all(
        &self,
        arns: Vec<String>,
    ) -> Result<BTreeMap<String, Vec<Action>>, PortError> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(ARNS_PER_CALL) {
            match self.describe(chunk.to_vec()).await {
                Ok(got) => out.extend(got),
                Err(e) if e.kind == ErrorKind::NotFound && chunk.len() > 1 => {
                    for arn in chunk {
                        match self.describe(vec![arn.clone()]).await {
                            Ok(got) => out.extend(got),
                            Err(e) if e.kind == ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One `DescribeListeners` or `DescribeRules` of `arns`.
    async fn describe(
        &self,
        arns: Vec<String>,
    ) -> Result<BTreeMap<String, Vec<Action>>, PortError> {
        Ok(match &self.target {
            ListenerTarget::Listener(_) => aws_call!(
                self.calls,
                "DescribeListeners",
                self.client
                    .describe_listeners()
                    .set_listener_arns(Some(arns.clone()))
                    .send()
            )?
            .listeners()
            .iter()
            .filter_map(|l| Some((l.listener_arn()?.to_string(), l.default_actions().to_vec())))
            .collect(),
            ListenerTarget::Rule(_) => aws_call!(
                self.calls,
                "DescribeRules",
                self.client
                    .describe_rules()
                    .set_rule_arns(Some(arns.clone()))
                    .send()
            )?
            .rules()
            .iter()
            .filter_map(|r| Some((r.rule_arn()?.to_string(), r.actions().to_vec())))
            .collect(),
        })
    }

    fn slot_of(&self, tg: &str) -> Option<Slot> {
        Slot::BOTH
            .into_iter()
            .find(|s| self.target_groups[s.index()] == tg)
    }

    /// Read the slot weights from the forward action.
    fn weights_of(&self, actions: &[Action]) -> Result<SlotWeights, PortError> {
        let invalid = |m: String| PortError::new("router.weights", ErrorKind::Invalid, m);
        let forward = actions
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .ok_or_else(|| invalid(format!("{} has no forward action", self.arn())))?;
        let mut raw = [0i64; 2];
        let tuples: Vec<(String, i64)> = match forward
            .forward_config()
            .filter(|f| !f.target_groups().is_empty())
        {
            Some(f) => f
                .target_groups()
                .iter()
                .map(|t| {
                    (
                        t.target_group_arn().unwrap_or_default().to_string(),
                        i64::from(t.weight().unwrap_or(1)),
                    )
                })
                .collect(),
            None => vec![(
                forward.target_group_arn().unwrap_or_default().to_string(),
                1,
            )],
        };
        for (tg, w) in tuples {
            match self.slot_of(&tg) {
                Some(s) => raw[s.index()] += w,
                None if w == 0 => {} // a third group with no traffic does no harm
                None => {
                    return Err(invalid(format!(
                        "{} forwards to target group {tg}, which is neither slot (router.target_groups); \
                         teal will not take over traffic it does not own",
                        self.arn()
                    )))
                }
            }
        }
        let total = raw[0] + raw[1];
        if total == 0 {
            return Err(invalid(format!(
                "{} forwards with weight 0 to both slots",
                self.arn()
            )));
        }
        // ALB weights are 0..=999 and relative; teal writes percentages, so
        // what it wrote reads back exactly. Others are rounded to percent.
        let a = ((raw[0] * 100 + total / 2) / total) as u8;
        Ok(SlotWeights { a, b: 100 - a })
    }

    /// Check, read-only, that the listener/rule and both target groups exist
    /// and that the forward action points only at the slots; `Err`: a read
    /// failed for a passing reason, the checks are not done.
    async fn check(&self) -> Result<Vec<String>, PortError> {
        let mut problems = Vec::new();
        let mut protocols = Vec::new();
        for (i, tg) in self.target_groups.iter().enumerate() {
            let r = aws_call!(
                self.calls,
                "DescribeTargetGroups",
                self.client
                    .describe_target_groups()
                    .target_group_arns(tg)
                    .send()
            );
            match r {
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => problems.push(format!(
                    "router.target_groups[{i}]: target group {tg} cannot be read ({})",
                    e.message
                )),
                Ok(out) => {
                    let protocol = out
                        .target_groups()
                        .first()
                        .and_then(|g| g.protocol())
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default();
                    protocols.push((i, tg.clone(), protocol));
                }
            }
        }
        match (&self.target, self.balancer) {
            (ListenerTarget::Rule(_), _) => {
                problems.extend(self.check_forward("router.rule_arn").await?)
            }
            (ListenerTarget::Listener(_), Balancer::Application) => {
                problems.extend(self.check_forward("router.listener_arn").await?);
                // Told by its target groups, which were read anyway: an NLB's
                // speak TCP, TLS, UDP or TCP_UDP, an ALB's HTTP or HTTPS.
                for (i, tg, protocol) in &protocols {
                    if !nlb_target_protocols(protocol).is_empty() {
                        problems.push(format!(
                            "router.target_groups[{i}]: target group {tg} speaks {protocol}, \
                             a Network Load Balancer's protocol: use kind = \"nlb\""
                        ));
                    }
                }
            }
            (ListenerTarget::Listener(_), Balancer::Network) => problems.extend(
                self.check_listener("router.listener_arn", &protocols)
                    .await?,
            ),
        }
        Ok(problems)
    }

    /// An NLB listener: readable, forwarding only to the slots, a Network
    /// Load Balancer's (told by its protocol: TCP, TLS, UDP or TCP_UDP, where
    /// an ALB's is HTTP or HTTPS), with slots that speak a protocol it
    /// forwards to. `protocols`: index, ARN and protocol of each readable
    /// slot target group.
    async fn check_listener(
        &self,
        field: &str,
        protocols: &[(usize, String, String)],
    ) -> Result<Vec<String>, PortError> {
        let listener = match aws_call!(
            self.calls,
            "DescribeListeners",
            self.client
                .describe_listeners()
                .listener_arns(self.arn())
                .send()
        ) {
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => Err(e.message),
            Ok(out) => out
                .listeners()
                .first()
                .cloned()
                .ok_or_else(|| format!("{} not found", self.arn())),
        };
        let listener = match listener {
            Err(why) => {
                return Ok(vec![format!(
                    "{field}: {} cannot be read ({why})",
                    self.arn()
                )])
            }
            Ok(l) => l,
        };
        let mut problems = Vec::new();
        if let Err(e) = self.weights_of(listener.default_actions()) {
            problems.push(format!("{field}: {}", e.message));
        }
        let on = listener.protocol().map(|p| p.as_str()).unwrap_or_default();
        let network = !nlb_target_protocols(on).is_empty();
        if !network {
            problems.push(format!(
                "{field}: {} is a {on} listener, not a Network Load Balancer's: use kind = \"alb\"",
                self.arn()
            ));
            return Ok(problems);
        }
        for (i, tg, protocol) in protocols {
            if !nlb_protocols_fit(on, protocol) {
                problems.push(format!(
                    "router.target_groups[{i}]: target group {tg} speaks {protocol}, which a \
                     {on} listener cannot forward to (Elastic Load Balancing allows {})",
                    nlb_target_protocols(on).join(" or ")
                ));
            }
        }
        Ok(problems)
    }

    /// The listener/rule cannot be read, or forwards outside the slots.
    async fn check_forward(&self, field: &str) -> Result<Option<String>, PortError> {
        Ok(match self.actions().await {
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => Some(format!(
                "{field}: {} cannot be read ({})",
                self.arn(),
                e.message
            )),
            Ok(actions) => self
                .weights_of(&actions)
                .err()
                .map(|e| format!("{field}: {}", e.message)),
        })
    }
}

/// The target group protocols an NLB listener of `listener` protocol
/// forwards to, as the Network Load Balancer guide's "Target groups for your
/// Network Load Balancers" tabulates them (TCP: TCP or TCP_UDP; TLS: TCP or
/// TLS; UDP: UDP or TCP_UDP; TCP_UDP: TCP_UDP).
fn nlb_target_protocols(listener: &str) -> &'static [&'static str] {
    match listener {
        "TCP" => &["TCP", "TCP_UDP"],
        "TLS" => &["TCP", "TLS"],
        "UDP" => &["UDP", "TCP_UDP"],
        "TCP_UDP" => &["TCP_UDP"],
        _ => &[],
    }
}

/// Whether an NLB listener speaking `listener` forwards to a target group
/// speaking `target_group`.
pub fn nlb_protocols_fit(listener: &str, target_group: &str) -> bool {
    nlb_target_protocols(listener).contains(&target_group)
}

fn not_found(op: &str, arn: &str) -> PortError {
    PortError::new(op, ErrorKind::NotFound, format!("{arn} not found"))
}

#[async_trait]
impl Router for AlbRouter {
    async fn preflight(&self, _plan: &crate::engine::Plan) -> crate::ports::Checks {
        let checked = async {
            let mut problems = self.check().await?;
            if let Some(test) = &self.test {
                // Its target groups were just checked; its forward must use only them.
                problems.extend(test.check_forward("router.test_listener_arn").await?);
            }
            Ok(problems)
        };
        match checked.await {
            Ok(problems) => crate::ports::Checks::problems(problems),
            Err(e) => crate::ports::Checks::unread(e),
        }
    }

    async fn test_weights(&self) -> Result<Option<SlotWeights>, PortError> {
        match &self.test {
            Some(test) => test.weights().await.map(Some),
            None => Ok(None),
        }
    }

    async fn set_test_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        match &self.test {
            Some(test) => test.set_weights(w).await,
            None => Err(PortError::new(
                "router.set_test_weights",
                ErrorKind::Invalid,
                "no router.test_listener_arn is configured",
            )),
        }
    }

    async fn weights(&self) -> Result<SlotWeights, PortError> {
        let actions = self.actions().await?;
        self.weights_of(&actions)
    }

    async fn set_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        // All traffic to one slot (a rollback above all) does not queue
        // behind other services' reads in a release.
        match w.full_slot() {
            Some(_) => crate::aws::pace::urgent(self.write_weights(w)).await,
            None => self.write_weights(w).await,
        }
    }
}

impl AlbRouter {
    /// Read the actions, rewrite the forward with `w`, write them back.
    async fn write_weights(&self, w: SlotWeights) -> Result<(), PortError> {
        if !w.is_valid() {
            return Err(PortError::new(
                "router.set_weights",
                ErrorKind::Invalid,
                format!("invalid weights {w}"),
            ));
        }
        let actions = self.actions_now().await?;
        // Refuse to overwrite a forward that points elsewhere (read again: it may have changed).
        self.weights_of(&actions)?;
        let rewritten: Vec<Action> = actions
            .into_iter()
            .map(|a| {
                if a.r#type() != Some(&ActionTypeEnum::Forward) {
                    return a;
                }
                let stickiness = a
                    .forward_config()
                    .and_then(|f| f.target_group_stickiness_config())
                    .cloned();
                let tuples = Slot::BOTH.map(|s| {
                    TargetGroupTuple::builder()
                        .target_group_arn(&self.target_groups[s.index()])
                        .weight(i32::from(w.get(s)))
                        .build()
                });
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .set_order(a.order())
                    .forward_config(
                        ForwardActionConfig::builder()
                            .set_target_groups(Some(tuples.to_vec()))
                            .set_target_group_stickiness_config(stickiness)
                            .build(),
                    )
                    .build()
            })
            .collect();
        let written = self.modify(rewritten).await;
        // Landed or not (a timed-out write may have): the next read, the
        // read-back above all, is not served from before it.
        if let Some(shared) = &self.shared {
            match &self.target {
                ListenerTarget::Listener(arn) => shared.listeners.forget([arn.clone()]),
                ListenerTarget::Rule(arn) => shared.rules.forget([arn.clone()]),
            }
        }
        written
    }

    /// Write the listener's default actions, or the rule's actions.
    async fn modify(&self, rewritten: Vec<Action>) -> Result<(), PortError> {
        match &self.target {
            ListenerTarget::Listener(arn) => {
                aws_call!(
                    self.calls,
                    "ModifyListener",
                    self.client
                        .modify_listener()
                        .listener_arn(arn)
                        .set_default_actions(Some(rewritten))
                        .send()
                )?;
            }
            ListenerTarget::Rule(arn) => {
                aws_call!(
                    self.calls,
                    "ModifyRule",
                    self.client
                        .modify_rule()
                        .rule_arn(arn)
                        .set_actions(Some(rewritten))
                        .send()
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::nlb_protocols_fit;

    #[test]
    fn nlb_listener_and_target_group_protocols_fit_as_the_guide_tabulates() {
        let all = ["TCP", "TLS", "UDP", "TCP_UDP", "HTTP", "HTTPS"];
        let fits = |l: &str| -> Vec<&str> {
            all.iter()
                .copied()
                .filter(|tg| nlb_protocols_fit(l, tg))
                .collect()
        };
        assert_eq!(fits("TCP"), ["TCP", "TCP_UDP"]);
        assert_eq!(fits("TLS"), ["TCP", "TLS"]);
        assert_eq!(fits("UDP"), ["UDP", "TCP_UDP"]);
        assert_eq!(fits("TCP_UDP"), ["TCP_UDP"]);
        assert_eq!(fits("HTTP"), Vec::<&str>::new(), "an ALB's listener");
    }
}
