//! What the green flags say: each value checked before any cloud call, the
//! flags checked against the fleet kind, pipeline files read, and from them
//! green's revision label and what it runs in the record's words.

use super::args::GreenArgs;
use super::Failure;
use crate::aws::autoscaling::GreenTemplate;
use crate::aws::ecs::GreenTask;
use crate::config::{Config, FleetConfig};

/// Green, as the flags give it.
pub(super) struct Green {
    /// Its revision label.
    pub revision: String,
    /// What it runs, in the record's words (`image=...`, `ami=...`).
    pub runs: Option<String>,
}

impl Green {
    /// Green from the flags, refused (exit 2) before any cloud call when a
    /// value is malformed, a pipeline file unreadable, or a flag for another
    /// fleet kind.
    pub(super) fn of(config: &Config, args: &GreenArgs) -> Result<Green, Failure> {
        check_green_flags(config, args)?;
        let task = green_task(args)?;
        Ok(Green {
            revision: revision_label(args, task.as_ref(), config),
            runs: green_spec(args, task),
        })
    }
}

impl Green {
    /// A release member's green: the entries of the release's
    /// `imagedefinitions.json` it takes, labelled `revision` or by its image.
    pub(super) fn of_images(
        config: &Config,
        images: std::collections::BTreeMap<String, String>,
        revision: Option<String>,
    ) -> Result<Green, Failure> {
        let args = GreenArgs {
            revision,
            ..GreenArgs::default()
        };
        check_green_flags(config, &args)?;
        let task = GreenTask::Images(images);
        Ok(Green {
            revision: revision_label(&args, Some(&task), config),
            runs: green_spec(&args, Some(task)),
        })
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
fn green_spec(args: &GreenArgs, task: Option<GreenTask>) -> Option<String> {
    let template = args
        .launch_template_version
        .clone()
        .map(GreenTemplate::Version)
        .or_else(|| args.ami.clone().map(GreenTemplate::Ami));
    task.map(|t| t.spec())
        .or_else(|| template.map(|t| t.spec()))
}

/// Green's revision label: `--revision` (or CodeBuild's source version), else
/// what green runs.
fn revision_label(args: &GreenArgs, task: Option<&GreenTask>, config: &Config) -> String {
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
fn green_task(args: &GreenArgs) -> Result<Option<GreenTask>, Failure> {
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
