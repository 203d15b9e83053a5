//! The AWS ports of a config, composed from two halves: a router part (what
//! splits traffic, where the deployment record lives, the target groups a
//! fleet registers in) and a fleet part (the compute of each slot, and its
//! in-place update for a rolling strategy). [`PAIRS`] is the one table of
//! the fleet and router kinds teal deploys together.

use super::autoscaling::{self, refresh};
use super::ecs::{self, rollout};
use super::elb::alb;
use super::{cloudfront, cloudwatch, dynamodb, route53, s3, Aws};
use crate::analysis::spec::{LiveValues, SlotValues};
use crate::config::{Config, FleetConfig, RouterConfig};
use crate::model::Slot;
use crate::ports::{
    AllGates, Clock, Fleet, Gate, Ledger, Metrics, NoHooks, Ports, Rollout, Router,
};
use crate::strategy::{Rolling, Shape};
use std::sync::Arc;

pub use crate::config::AWS_PAIRS as PAIRS;

/// What a router brings.
struct RouterPart {
    router: Arc<dyn Router>,
    ledger: Arc<dyn Ledger>,
    /// Slot A's and slot B's target groups, when the router forwards to
    /// target groups (a rolling-only router's one serves as both).
    target_groups: Option<[String; 2]>,
    /// Placeholder values the router learns as it reads, for the analysis.
    live: Option<LiveValues>,
    /// The region of its metrics and alarms, when not the deployment's own.
    metrics_region: Option<&'static str>,
}

/// What a fleet brings.
struct FleetPart {
    fleet: Arc<dyn Fleet>,
    rollout: Option<Arc<dyn Rollout>>,
}

/// The AWS ports for a config, or why this config cannot deploy to AWS.
pub fn ports(aws: &Aws, config: &Config, clock: Arc<dyn Clock>) -> Result<Ports, String> {
    let pair = (config.fleet.kind(), config.router.kind());
    if !PAIRS.contains(&pair) {
        let supported: Vec<String> = PAIRS
            .iter()
            .map(|(f, r)| format!("{f} behind {r}"))
            .collect();
        return Err(format!(
            "{}: fleet.kind = {:?} with router.kind = {:?} cannot deploy yet; {} can",
            config.path.display(),
            pair.0,
            pair.1,
            supported.join(", ")
        ));
    }
    let rolling = match config.strategy.shape {
        Shape::Rolling(r) => Some(r),
        Shape::BlueGreen { .. } => None,
    };
    let router = router_part(aws, config, rolling);
    let fleet = fleet_part(aws, config, router.target_groups.clone(), rolling);
    let watched = match router.metrics_region {
        Some(region) => aws.in_region(region),
        None => aws.clone(),
    };
    let live = router.live.clone();
    Ok(Ports {
        fleet: fleet.fleet,
        router: router.router,
        gate: gates(&watched, config),
        ledger: router.ledger,
        hooks: Arc::new(NoHooks),
        rollout: fleet.rollout,
        metrics: config.analysis.as_ref().map(|a| {
            let metrics =
                cloudwatch::CloudWatchMetrics::new(&watched, a.clone(), slot_values(config));
            Arc::new(match live {
                Some(live) => metrics.with_live(live),
                None => metrics,
            }) as Arc<dyn Metrics>
        }),
        clock,
    })
}

/// Every configured gate, read together each poll (a new kind of gate is
/// one more entry here).
fn gates(aws: &Aws, config: &Config) -> Arc<dyn Gate> {
    Arc::new(AllGates(vec![Arc::new(cloudwatch::AlarmGate::new(
        aws,
        config.gates.alarms.clone(),
    ))]))
}

fn router_part(aws: &Aws, config: &Config, rolling: Option<Rolling>) -> RouterPart {
    if let Some(l) = config.router.listener() {
        let tgs = both_slots(l.target_groups);
        // A rolling update's listener (or rule) only holds the ledger.
        let router = alb::AlbRouter::new(aws, l.balancer, l.target.clone(), tgs.clone())
            .with_test_listener(
                l.test_listener
                    .filter(|_| rolling.is_none())
                    .map(String::from),
            );
        return RouterPart {
            ledger: table_ledger(aws, config, router.arn()),
            router: Arc::new(router),
            target_groups: Some(tgs),
            live: None,
            metrics_region: None,
        };
    }
    match &config.router {
        RouterConfig::Route53 {
            hosted_zone_id,
            record_name,
            record_type,
            set_identifiers,
        } => RouterPart {
            router: Arc::new(route53::Route53Router::new(
                aws,
                hosted_zone_id.clone(),
                record_name,
                record_type,
                [set_identifiers[0].clone(), set_identifiers[1].clone()],
            )),
            ledger: match config.ledger.table_for(&config.router) {
                Some(_) => table_ledger(
                    aws,
                    config,
                    &format!("route53:{hosted_zone_id}:{record_name}"),
                ),
                None => Arc::new(route53::TxtLedger::new(
                    aws,
                    hosted_zone_id.clone(),
                    record_name,
                )),
            },
            target_groups: None,
            live: None,
            metrics_region: None,
        },
        RouterConfig::Cloudfront {
            distribution_id,
            sticky,
            test_header,
        } => {
            let FleetConfig::S3 { bucket, prefix, .. } = &config.fleet else {
                unreachable!("a CloudFront router serves an S3 fleet (PAIRS)")
            };
            let live = LiveValues::default();
            RouterPart {
                router: Arc::new(
                    cloudfront::CloudFrontRouter::new(
                        aws,
                        distribution_id.clone(),
                        s3::SiteBucket::new(aws, bucket, prefix),
                        *sticky,
                    )
                    .with_live(live.clone())
                    .with_test_header(test_header.clone()),
                ),
                ledger: table_ledger(aws, config, &format!("cloudfront:{distribution_id}")),
                target_groups: None,
                live: Some(live),
                metrics_region: Some(cloudfront::METRICS_REGION),
            }
        }
        RouterConfig::Alb { .. } | RouterConfig::Nlb { .. } => unreachable!("read above"),
        RouterConfig::Sim | RouterConfig::Local { .. } => {
            unreachable!("not an AWS router; PAIRS is checked first")
        }
    }
}

fn fleet_part(
    aws: &Aws,
    config: &Config,
    router_tgs: Option<[String; 2]>,
    rolling: Option<Rolling>,
) -> FleetPart {
    match &config.fleet {
        FleetConfig::Ecs {
            cluster,
            service,
            container,
            container_port,
            slots,
        } => {
            let tgs = router_tgs.expect("an ECS fleet sits behind an ALB (PAIRS)");
            let fleet = ecs::EcsFleet::new(
                aws,
                cluster.clone(),
                service.clone(),
                container.clone(),
                *container_port,
                tgs,
            )
            .with_slots(*slots);
            FleetPart {
                rollout: rolling.map(|r| {
                    Arc::new(rollout::EcsRollout::new(
                        fleet.clone(),
                        r.min_healthy_percent,
                        r.max_percent,
                    )) as Arc<dyn Rollout>
                }),
                fleet: Arc::new(fleet),
            }
        }
        FleetConfig::Asg {
            group,
            target_groups,
            slots,
        } => {
            // Behind Route 53 the groups' own target groups judge health; a
            // rolling update needs none (the refresh judges health).
            let tgs = router_tgs.unwrap_or_else(|| match target_groups.len() {
                0 => [String::new(), String::new()],
                _ => both_slots(target_groups),
            });
            let fleet = autoscaling::AsgFleet::new(aws, group.clone(), tgs).with_slots(*slots);
            FleetPart {
                rollout: rolling.map(|r| {
                    Arc::new(refresh::GroupRollout::new(
                        fleet.clone(),
                        refresh::RefreshPlan::of(&r, &config.gates.alarms),
                    )) as Arc<dyn Rollout>
                }),
                fleet: Arc::new(fleet),
            }
        }
        FleetConfig::S3 {
            bucket,
            prefix,
            site,
        } => {
            let RouterConfig::Cloudfront {
                distribution_id, ..
            } = &config.router
            else {
                unreachable!("an S3 fleet sits behind CloudFront (PAIRS)")
            };
            let bucket = s3::SiteBucket::new(aws, bucket, prefix);
            let primary = cloudfront::Primary::new(aws, distribution_id.clone(), bucket.clone());
            FleetPart {
                fleet: Arc::new(
                    s3::fleet::S3Fleet::new(bucket, site.clone()).serving(Arc::new(primary)),
                ),
                rollout: None,
            }
        }
        FleetConfig::Sim { .. } | FleetConfig::Local { .. } => {
            unreachable!("not an AWS fleet; PAIRS is checked first")
        }
    }
}

/// Each slot's values for the analysis's placeholders, as CloudWatch's
/// dimensions spell them: `{target_group}` = `targetgroup/NAME/ID`,
/// `{load_balancer}` = `app/NAME/ID` (from the listener or rule ARN),
/// `{service}` and `{group}` the slot's ECS service or Auto Scaling group,
/// `{cluster}` the cluster's name.
fn slot_values(config: &Config) -> [SlotValues; 2] {
    let mut values = [SlotValues::new(), SlotValues::new()];
    if let Some(l) = config.router.listener() {
        let tgs = both_slots(l.target_groups);
        let resource = |arn: &str| arn.splitn(6, ':').nth(5).unwrap_or(arn).to_string();
        // listener/app/N/ID/L or listener-rule/app/N/ID/L/R: the load balancer is app/N/ID.
        let lb: String = resource(l.target.arn())
            .split('/')
            .skip(1)
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        for (slot, tg) in values.iter_mut().zip(&tgs) {
            slot.insert("target_group", resource(tg));
            slot.insert("load_balancer", lb.clone());
        }
    }
    for (slot, v) in Slot::BOTH.iter().zip(values.iter_mut()) {
        match &config.fleet {
            FleetConfig::Ecs {
                cluster, service, ..
            } => {
                let name = cluster.rsplit('/').next().unwrap_or(cluster);
                v.insert("cluster", name.to_string());
                v.insert("service", format!("{service}-{slot}"));
            }
            FleetConfig::Asg { group, .. } => {
                v.insert("group", format!("{group}-{slot}"));
            }
            FleetConfig::Sim { .. } | FleetConfig::Local { .. } | FleetConfig::S3 { .. } => {}
        }
    }
    values
}

/// The DynamoDB ledger of the router identified by `key`.
fn table_ledger(aws: &Aws, config: &Config, key: &str) -> Arc<dyn Ledger> {
    let table = config
        .ledger
        .table_for(&config.router)
        .unwrap_or_else(|| crate::config::LedgerConfig::DEFAULT_TABLE.to_string());
    Arc::new(dynamodb::TableLedger::new(aws, table, key.to_string()))
}

/// Slot A's and slot B's target groups; a rolling-only router's one serves as both.
fn both_slots(target_groups: &[String]) -> [String; 2] {
    [
        target_groups[0].clone(),
        target_groups.last().expect("one or two").clone(),
    ]
}
