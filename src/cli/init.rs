//! `teal init`: write a commented `teal.toml` from a service that already
//! runs (an ECS service, an Auto Scaling group, or a listener), read-only.
//! What blue/green still lacks (typically slot B's target group) is said with
//! the CloudFormation and Terraform to add it; `--create-target-group` is the
//! one write, a copy of blue's target group.

use super::render::Format;
use super::Failure;
use crate::aws::discover::{self, Found, FoundFleet, Start};
use crate::aws::Aws;
use crate::config::Balancer;
use crate::exit::Exit;
use crate::wiring::Cloud;
use std::fmt::Write as _;
use std::path::Path;

/// Where `init` starts, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The ECS cluster of `--service`.
    #[arg(long, requires = "service")]
    pub cluster: Option<String>,
    /// An ECS service, blue now.
    #[arg(long, requires = "cluster", conflicts_with_all = ["group", "listener"])]
    pub service: Option<String>,
    /// An Auto Scaling group, blue now.
    #[arg(long, conflicts_with = "listener")]
    pub group: Option<String>,
    /// A listener: the fleet is the Auto Scaling group in the target group it forwards to.
    #[arg(long)]
    pub listener: Option<String>,
    /// Create slot B's target group (a copy of blue's) when it is missing:
    /// the only change `init` makes.
    #[arg(long)]
    pub create_target_group: bool,
    /// Overwrite the config file if it exists.
    #[arg(long)]
    pub force: bool,
}

impl InitArgs {
    fn start(&self) -> Result<Start, Failure> {
        match (&self.cluster, &self.service, &self.group, &self.listener) {
            (Some(cluster), Some(service), None, None) => Ok(Start::Ecs {
                cluster: cluster.clone(),
                service: service.clone(),
            }),
            (None, None, Some(group), None) => Ok(Start::Asg {
                group: group.clone(),
            }),
            (None, None, None, Some(l)) if l.starts_with("arn:") && l.contains(":listener/") => {
                Ok(Start::Listener(l.clone()))
            }
            (None, None, None, Some(l)) => Err(Failure::Usage(format!(
                "--listener: expected a listener ARN (arn:aws:elasticloadbalancing:...:listener/...), got {l:?}"
            ))),
            _ => Err(Failure::Usage(
                "say where to start: --cluster C --service S, --group G, or --listener ARN"
                    .to_string(),
            )),
        }
    }
}

/// `teal init`: write `path` from what `args` points at.
pub(super) fn init(
    path: &Path,
    args: &InitArgs,
    cloud: &Cloud,
    output: Format,
) -> Result<Exit, Failure> {
    let start = args.start()?;
    if path.exists() && !args.force {
        return Err(Failure::Usage(format!(
            "{} exists: teal init does not overwrite it without --force",
            path.display()
        )));
    }
    let runtime = super::session::runtime()?;
    let (found, created) = runtime.block_on(async {
        let aws = Aws::load(cloud.region.clone(), cloud.profile.clone()).await;
        let mut found = discover::discover(&aws, &start)
            .await
            .map_err(read_failure)?;
        let mut created = None;
        if found.slot_b.is_none() && args.create_target_group {
            let arn = discover::create_slot_b(&aws, &found)
                .await
                .map_err(|e| Failure::Usage(format!("--create-target-group: {}", e.message)))?;
            found.slot_b = Some(arn.clone());
            created = Some(arn);
        }
        Ok::<_, Failure>((found, created))
    })?;
    let text = render(&found, &start);
    std::fs::write(path, &text)?;
    let missing = missing(&found);
    match output {
        Format::Json => {
            let line = serde_json::json!({
                "event": "init",
                "written": path.display().to_string(),
                "fleet": found.fleet.as_ref().map(|f| format!("{f:?}")),
                "listener": found.listener,
                "rule": found.rule,
                "target_groups": [found.blue.target_group_arn(), found.slot_b.as_deref()],
                "alarms": found.alarms,
                "created_target_group": created,
                "missing": missing,
            });
            println!("{line}");
        }
        Format::Text => {
            println!("wrote {}", path.display());
            if let Some(arn) = &created {
                println!("created slot B's target group {arn} (a copy of blue's)");
            }
            for m in &missing {
                println!("missing: {m}");
            }
            if found.slot_b.is_none() {
                print!("{}", snippets(&found));
            }
            if missing.is_empty() {
                println!("next: teal plan; teal verify --image IMAGE; teal deploy --image IMAGE");
            }
        }
    }
    Ok(Exit::Succeeded)
}

/// A read that failed: the resource named is not there (exit 2), or AWS
/// could not be read (exit 1).
fn read_failure(e: crate::ports::PortError) -> Failure {
    if e.is_transient() {
        Failure::Io(std::io::Error::other(format!("{}: {}", e.op, e.message)))
    } else {
        Failure::Usage(format!("{}: {}", e.op, e.message))
    }
}

/// What blue/green still lacks.
fn missing(found: &Found) -> Vec<String> {
    let mut out = Vec::new();
    if found.fleet.is_none() {
        out.push(
            "the fleet: no single Auto Scaling group is in the listener's target group \
             (for an ECS service, run teal init --cluster C --service S)"
                .to_string(),
        );
    }
    if found.listener.is_none() && found.rule.is_none() {
        out.push(format!(
            "a listener or rule forwarding to target group {}",
            found.blue.target_group_arn().unwrap_or("?")
        ));
    }
    if found.slot_b.is_none() {
        out.push(format!(
            "slot B's target group: create {:?} as below (or run teal init again with \
             --create-target-group), then run teal init again with --force",
            found.slot_b_name()
        ));
    }
    if found.alarms.is_empty() {
        out.push("alarms: none names the load balancer, target groups or fleet".to_string());
    }
    out
}

/// The CloudFormation and Terraform that declare slot B's target group as a
/// copy of blue's.
fn snippets(found: &Found) -> String {
    let b = &found.blue;
    let name = found.slot_b_name();
    let protocol = b.protocol().map(|p| p.as_str()).unwrap_or("HTTP");
    let port = b.port().unwrap_or(80);
    let vpc = b.vpc_id().unwrap_or("VPC-ID");
    let target_type = b.target_type().map(|t| t.as_str()).unwrap_or("ip");
    let path = b.health_check_path();
    let mut s = String::new();
    let _ = writeln!(s, "\nCloudFormation (Resources):\n");
    let _ = writeln!(s, "  TargetGroupB:");
    let _ = writeln!(s, "    Type: AWS::ElasticLoadBalancingV2::TargetGroup");
    let _ = writeln!(s, "    Properties:");
    let _ = writeln!(s, "      Name: {name}");
    let _ = writeln!(s, "      VpcId: {vpc}");
    let _ = writeln!(s, "      Protocol: {protocol}");
    let _ = writeln!(s, "      Port: {port}");
    let _ = writeln!(s, "      TargetType: {target_type}");
    if let Some(p) = path {
        let _ = writeln!(s, "      HealthCheckPath: {p}");
    }
    if let Some(i) = b.health_check_interval_seconds() {
        let _ = writeln!(s, "      HealthCheckIntervalSeconds: {i}");
    }
    let _ = writeln!(s, "\nTerraform:\n");
    let _ = writeln!(s, "resource \"aws_lb_target_group\" \"slot_b\" {{");
    let _ = writeln!(s, "  name        = \"{name}\"");
    let _ = writeln!(s, "  vpc_id      = \"{vpc}\"");
    let _ = writeln!(s, "  protocol    = \"{protocol}\"");
    let _ = writeln!(s, "  port        = {port}");
    let _ = writeln!(s, "  target_type = \"{target_type}\"");
    if path.is_some() || b.health_check_interval_seconds().is_some() {
        let _ = writeln!(s, "\n  health_check {{");
        if let Some(p) = path {
            let _ = writeln!(s, "    path     = \"{p}\"");
        }
        if let Some(i) = b.health_check_interval_seconds() {
            let _ = writeln!(s, "    interval = {i}");
        }
        let _ = writeln!(s, "  }}");
    }
    let _ = writeln!(s, "}}");
    s
}

/// The config file.
fn render(found: &Found, start: &Start) -> String {
    let mut s = String::new();
    let how = match start {
        Start::Ecs { cluster, service } => format!("--cluster {cluster} --service {service}"),
        Start::Asg { group } => format!("--group {group}"),
        Start::Listener(l) => format!("--listener {l}"),
    };
    let _ = writeln!(s, "# Written by `teal init {how}` from what AWS said then.");
    let _ = writeln!(
        s,
        "# Review it, then: teal plan; teal verify --image IMAGE; teal deploy --image IMAGE\n"
    );
    let name = match &found.fleet {
        Some(FoundFleet::Ecs { service, .. }) => service.clone(),
        Some(FoundFleet::Asg { group }) => group.clone(),
        None => "SERVICE".to_string(),
    };
    let _ = writeln!(s, "[service]\nname = {name:?}\n");
    match &found.fleet {
        Some(FoundFleet::Ecs {
            cluster,
            service,
            container,
            container_port,
        }) => {
            let _ = writeln!(s, "[fleet]\nkind = \"ecs\"\ncluster = {cluster:?}");
            let _ = writeln!(
                s,
                "service = {service:?}          # blue: the service live now"
            );
            let _ = writeln!(
                s,
                "container = {container:?}             # attached to the target group; --image replaces its image"
            );
            let _ = writeln!(s, "container_port = {container_port}");
            let _ = writeln!(
                s,
                "# slots = \"existing\"        # when {service}-a and {service}-b live in your IaC (README)\n"
            );
        }
        Some(FoundFleet::Asg { group }) => {
            let _ = writeln!(s, "[fleet]\nkind = \"asg\"");
            let _ = writeln!(s, "group = {group:?}          # blue: the group live now");
            let _ = writeln!(
                s,
                "# slots = \"existing\"        # when {group}-a and {group}-b live in your IaC (README)\n"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "# [fleet]: not found (no single Auto Scaling group in the target group)\n\
                 # kind = \"asg\"\n# group = \"GROUP\"\n"
            );
        }
    }
    let kind = match found.balancer {
        Balancer::Application => "alb",
        Balancer::Network => "nlb",
    };
    let _ = writeln!(s, "[router]\nkind = {kind:?}");
    match (&found.listener, &found.rule) {
        (Some(l), _) => {
            let _ = writeln!(
                s,
                "listener_arn = {l:?}   # its default action forwards to blue"
            );
        }
        (None, Some(r)) => {
            let _ = writeln!(s, "rule_arn = {r:?}   # this rule forwards to blue");
        }
        (None, None) => {
            let _ = writeln!(
                s,
                "# listener_arn = \"...\"   # none forwards to blue's target group"
            );
        }
    }
    let blue = found.blue.target_group_arn().unwrap_or_default();
    let _ = writeln!(
        s,
        "target_groups = [\n  {blue:?},   # slot A: blue's, in use now"
    );
    match &found.slot_b {
        Some(b) => {
            let _ = writeln!(s, "  {b:?},   # slot B: green's\n]\n");
        }
        None => {
            let _ = writeln!(
                s,
                "  # slot B: create target group {:?} (teal init printed how), then run teal init again\n]\n",
                found.slot_b_name()
            );
        }
    }
    let _ = writeln!(
        s,
        "[gates]\n# Alarms whose dimensions name the load balancer, a slot's target group or the fleet."
    );
    let alarms: Vec<String> = found.alarms.iter().map(|a| format!("{a:?}")).collect();
    let _ = writeln!(s, "alarms = [{}]", alarms.join(", "));
    let _ = writeln!(s, "insufficient_data = \"ok\"\n");
    let _ = writeln!(
        s,
        "[strategy]\nname = \"canary-10-5m\"        # `teal strategies` lists the others\nkeep_alive = \"15m\"\n"
    );
    let _ = writeln!(
        s,
        "# The deployment record and its lock (DynamoDB, string key `id`)."
    );
    let _ = writeln!(s, "[ledger]\ntable = \"teal-ledger\"");
    if found.balancer == Balancer::Application {
        let _ = writeln!(
            s,
            "\n# Canary analysis: green against blue on each slot's own metrics.\n\
             # [analysis]\n\
             # [[analysis.metric]]\n\
             # preset = \"alb-5xx-share\"\n\
             # max = 0.05\n\
             # [[analysis.metric]]\n\
             # preset = \"alb-latency\""
        );
    }
    s
}
