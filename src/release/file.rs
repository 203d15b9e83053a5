//! The release file: raw TOML in, a validated [`Release`] out.
//!
//! ```toml
//! [release]
//! name = "shop"
//! on_failure = "rollback-wave"    # or "rollback-release", "continue"
//!
//! [[wave]]
//! name = "backend"
//! max_parallel = 2
//! services = ["api/teal.toml", { config = "worker/teal.toml", containers = ["worker"] }]
//!
//! [[wave]]
//! services = ["web/teal.toml"]
//! ```
//!
//! Member paths are relative to the release file. Each member's `teal.toml`
//! is loaded and validated as `teal deploy` would; a member listed twice (the
//! same file, the same service name, or the same listener, rule or record,
//! which is also where its record lives) is refused at its second place.

use crate::config::{Config, ConfigError, FleetConfig};
use crate::diag::{InputError, SourceFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// What a failure of one member does to the rest of the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Every member of the failed wave, and of the later waves already
    /// started, still short of its keep-alive's end
    /// goes back to blue; no later wave starts.
    RollbackWave,
    /// As `RollbackWave`, and the earlier waves' members still in their
    /// keep-alive go back too.
    RollbackRelease,
    /// The failed member stays rolled back; the others and later waves go on.
    Continue,
}

impl OnFailure {
    const NAMES: &'static str = "\"rollback-wave\", \"rollback-release\", \"continue\"";

    fn parse(s: &str) -> Option<OnFailure> {
        match s {
            "rollback-wave" => Some(OnFailure::RollbackWave),
            "rollback-release" => Some(OnFailure::RollbackRelease),
            "continue" => Some(OnFailure::Continue),
            _ => None,
        }
    }
}

/// A validated release.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[release] name`.
    pub name: String,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// The waves, in order.
    pub waves: Vec<Wave>,
}

/// One wave: members deployed together, at most `max_parallel` at a time.
#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    /// Its name (`wave N` unless named).
    pub name: String,
    /// Members in flight at once, at most.
    pub max_parallel: usize,
    /// Its members, in the file's order.
    pub members: Vec<Member>,
}

/// One service of a release.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Its validated `teal.toml`.
    pub config: Config,
    /// The `imagedefinitions.json` entries it takes: `containers`, else the
    /// ECS fleet's `container`; none for other fleets.
    pub containers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    release: Spanned<RawRelease>,
    wave: Option<Spanned<Vec<Spanned<RawWave>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    name: Option<Spanned<String>>,
    on_failure: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWave {
    name: Option<Spanned<String>>,
    max_parallel: Option<Spanned<i64>>,
    services: Option<Spanned<Vec<Spanned<RawMember>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMember {
    Path(String),
    Table {
        config: String,
        containers: Option<Vec<String>>,
    },
}

/// Where a member was first listed, to name it when it comes again.
struct Seen {
    field: String,
    service: String,
}

impl Release {
    /// Read and validate the release file at `path`, and every member's
    /// `teal.toml`; nothing here touches the network.
    pub fn load(path: &Path) -> Result<Release, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = SourceFile::new(path.display().to_string(), text);
        let raw: RawFile = toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let name = match &raw.release.get_ref().name {
            Some(n) => valid_name(&file, n)?,
            None => {
                return Err(file
                    .error(
                        raw.release.span(),
                        "release.name",
                        "missing: name the release",
                    )
                    .into())
            }
        };
        let on_failure = match &raw.release.get_ref().on_failure {
            None => OnFailure::RollbackWave,
            Some(s) => OnFailure::parse(s.get_ref()).ok_or_else(|| {
                file.error(
                    s.span(),
                    "release.on_failure",
                    format!("unknown {:?}: one of {}", s.get_ref(), OnFailure::NAMES),
                )
            })?,
        };
        let Some(raw_waves) = raw.wave.filter(|w| !w.get_ref().is_empty()) else {
            return Err(file
                .error(
                    raw.release.span(),
                    "wave",
                    "no [[wave]]: a release deploys at least one wave of services",
                )
                .into());
        };
        let mut files: BTreeMap<PathBuf, Seen> = BTreeMap::new();
        let mut services: BTreeMap<String, Seen> = BTreeMap::new();
        let mut routers: BTreeMap<String, Seen> = BTreeMap::new();
        let mut waves = vec![];
        for (w, raw_wave) in raw_waves.get_ref().iter().enumerate() {
            let at = |f: &str| format!("wave[{w}].{f}");
            let rw = raw_wave.get_ref();
            let Some(list) = rw.services.as_ref().filter(|s| !s.get_ref().is_empty()) else {
                return Err(file
                    .error(
                        raw_wave.span(),
                        &at("services"),
                        "a wave needs at least one service",
                    )
                    .into());
            };
            let max_parallel = match &rw.max_parallel {
                None => list.get_ref().len(),
                Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
                Some(n) => {
                    return Err(file
                        .error(
                            n.span(),
                            &at("max_parallel"),
                            format!(
                            "{} would deploy nothing: at least 1 (or leave it out for all at once)",
                            n.get_ref()
                        ),
                        )
                        .into())
                }
            };
            let mut members = vec![];
            for (m, entry) in list.get_ref().iter().enumerate() {
                let field = at(&format!("services[{m}]"));
                let (rel, containers) = match entry.get_ref() {
                    RawMember::Path(p) => (p.clone(), None),
                    RawMember::Table { config, containers } => (config.clone(), containers.clone()),
                };
                let member_path = base.join(&rel);
                let canonical = member_path.canonicalize().map_err(|e| {
                    file.error(
                        entry.span(),
                        &field,
                        format!(
                            "cannot read the service's config {}: {e}",
                            member_path.display()
                        ),
                    )
                })?;
                let config = Config::load(&member_path, None)?;
                // The strategy is checked against the fleet and router as a deployment would.
                config.plan()?;
                let again = |seen: &Seen, what: &str| -> ConfigError {
                    file.error(
                        entry.span(),
                        &field,
                        format!(
                            "{} {what} as {} ({}): a service is deployed once per release",
                            member_path.display(),
                            seen.field,
                            seen.service
                        ),
                    )
                    .into()
                };
                let seen = || Seen {
                    field: field.clone(),
                    service: config.service.clone(),
                };
                if let Some(s) = files.get(&canonical) {
                    return Err(again(s, "is listed already"));
                }
                if let Some(s) = services.get(&config.service) {
                    return Err(again(
                        s,
                        &format!("names service {:?}, listed already", config.service),
                    ));
                }
                if let Some(key) = config.router.traffic_key() {
                    if let Some(s) = routers.get(&key) {
                        return Err(again(s, &format!("splits traffic on {key}, the same one")));
                    }
                    routers.insert(key, seen());
                }
                files.insert(canonical, seen());
                services.insert(config.service.clone(), seen());
                let containers = match (containers, &config.fleet) {
                    (Some(c), _) => c,
                    (None, FleetConfig::Ecs { container, .. }) => vec![container.clone()],
                    (None, _) => vec![],
                };
                members.push(Member { config, containers });
            }
            waves.push(Wave {
                name: rw
                    .name
                    .as_ref()
                    .map_or(format!("wave {}", w + 1), |n| n.get_ref().clone()),
                max_parallel,
                members,
            });
        }
        Ok(Release {
            path: path.to_path_buf(),
            name,
            on_failure,
            waves,
        })
    }

    /// Every member, wave by wave.
    pub fn members(&self) -> impl Iterator<Item = (usize, &Member)> {
        self.waves
            .iter()
            .enumerate()
            .flat_map(|(w, wave)| wave.members.iter().map(move |m| (w, m)))
    }

    /// Split one `imagedefinitions.json` (container name → image) among the
    /// members by the containers each takes. An entry no member takes, one
    /// two members take, or an ECS member left with no entry is refused,
    /// naming the file (`source`) and the entry.
    pub fn split_images(
        &self,
        images: &BTreeMap<String, String>,
        source: &Path,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (_, m) in self.members() {
            for c in &m.containers {
                if let Some(other) = owner.insert(c, &m.config.service) {
                    if images.contains_key(c) {
                        return Err(format!(
                            "{}: entry {c:?} is taken by both {other:?} and {:?}; give each \
                             member its own `containers = [...]` in {}",
                            source.display(),
                            m.config.service,
                            self.path.display()
                        ));
                    }
                }
            }
        }
        let mut split: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (name, image) in images {
            let Some(service) = owner.get(name.as_str()) else {
                let claims: Vec<String> = self
                    .members()
                    .map(|(_, m)| format!("{} takes {:?}", m.config.service, m.containers))
                    .collect();
                return Err(format!(
                    "{}: entry {name:?} matches no service of release {:?} ({})",
                    source.display(),
                    self.name,
                    claims.join("; ")
                ));
            };
            split
                .entry(service.to_string())
                .or_default()
                .insert(name.clone(), image.clone());
        }
        for (_, m) in self.members() {
            if matches!(m.config.fleet, FleetConfig::Ecs { .. })
                && !split.contains_key(&m.config.service)
            {
                return Err(format!(
                    "{}: no entry for service {:?} (it takes {:?})",
                    source.display(),
                    m.config.service,
                    m.containers
                ));
            }
        }
        Ok(split)
    }
}

fn valid_name(file: &SourceFile, n: &Spanned<String>) -> Result<String, InputError> {
    let s = n.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(s.clone()),
        false => Err(file.error(
            n.span(),
            "release.name",
            format!("{s:?}: 1 to 64 letters, digits, '-', '_' or '.'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ECS + ALB member config for `service` on listener `listener`.
    fn member(dir: &Path, file: &str, service: &str, listener: &str) {
        let arn = |kind: &str, id: &str| {
            format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:{kind}/{id}")
        };
        let text = format!(
            r#"[service]
name = "{service}"
[fleet]
kind = "ecs"
cluster = "prod"
service = "{service}"
container = "{service}"
container_port = 8080
[router]
kind = "alb"
listener_arn = "{l}"
target_groups = ["{a}", "{b}"]
[gates]
alarms = ["{service}-5xx"]
[strategy]
canary = {{ percent = 10, bake = "1m" }}
"#,
            l = arn("listener", &format!("app/prod/50dc6c495c0c9188/{listener}")),
            a = arn("targetgroup", &format!("{service}-a/0a1b2c3d4e5f6a7b")),
            b = arn("targetgroup", &format!("{service}-b/0a1b2c3d4e5f6a7c")),
        );
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn release(dir: &Path, waves: &str) -> Result<Release, String> {
        let path = dir.join("release.toml");
        std::fs::write(&path, format!("[release]\nname = \"shop\"\n{waves}")).unwrap();
        Release::load(&path).map_err(|e| e.to_string())
    }

    fn three() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        member(dir.path(), "api.toml", "api", "f2f7dc8efc522ab1");
        member(dir.path(), "worker.toml", "worker", "f2f7dc8efc522ab2");
        member(dir.path(), "web.toml", "web", "f2f7dc8efc522ab3");
        dir
    }

    #[test]
    fn two_waves_load_with_their_members_and_defaults() {
        let dir = three();
        let r = release(
            dir.path(),
            "[[wave]]\nservices = [\"api.toml\", { config = \"worker.toml\", containers = [\"w1\", \"w2\"] }]\n\
             [[wave]]\nname = \"front\"\nmax_parallel = 1\nservices = [\"web.toml\"]\n",
        )
        .unwrap();
        assert_eq!(r.on_failure, OnFailure::RollbackWave);
        assert_eq!(r.waves.len(), 2);
        assert_eq!(
            (r.waves[0].name.as_str(), r.waves[0].max_parallel),
            ("wave 1", 2)
        );
        assert_eq!(
            (r.waves[1].name.as_str(), r.waves[1].max_parallel),
            ("front", 1)
        );
        assert_eq!(r.waves[0].members[0].containers, ["api"]);
        assert_eq!(r.waves[0].members[1].containers, ["w1", "w2"]);
    }

    #[test]
    fn bad_release_files_name_the_file_line_and_field() {
        let dir = three();
        let cases = [
            (
                "[[wave]]\nservices = [\"nope.toml\"]\n",
                "release.toml:4:13: wave[0].services[0]",
                "cannot read",
            ),
            (
                "[[wave]]\nservices = [\"api.toml\"]\n[[wave]]\nservices = [\"api.toml\"]\n",
                "release.toml:6:13: wave[1].services[0]",
                "as wave[0].services[0]",
            ),
            (
                "[[wave]]\nmax_parallel = 0\nservices = [\"api.toml\"]\n",
                "release.toml:4:16: wave[0].max_parallel",
                "at least 1",
            ),
            (
                "on_failure = \"retry\"\n[[wave]]\nservices = [\"api.toml\"]\n",
                "release.on_failure",
                "unknown \"retry\"",
            ),
            (
                "[[wave]]\nservices = []\n",
                "wave[0].services",
                "at least one service",
            ),
        ];
        for (body, at, what) in cases {
            // on_failure belongs in [release]: the case writes it right after the name.
            let e = release(dir.path(), body).unwrap_err();
            assert!(e.contains(at) && e.contains(what), "{body:?}: {e}");
        }
        // Two services on one listener: the second is refused, naming the first.
        member(dir.path(), "twin.toml", "twin", "f2f7dc8efc522ab1");
        let e = release(
            dir.path(),
            "[[wave]]\nservices = [\"api.toml\", \"twin.toml\"]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("wave[0].services[1]") && e.contains("the same one") && e.contains("(api)"),
            "{e}"
        );
    }

    #[test]
    fn image_definitions_are_split_by_container_and_strays_refused() {
        let dir = three();
        let r = release(
            dir.path(),
            "[[wave]]\nservices = [\"api.toml\", \"worker.toml\"]\n",
        )
        .unwrap();
        let images = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .map(|n| (n.to_string(), format!("repo/{n}:v2")))
                .collect()
        };
        let src = Path::new("imagedefinitions.json");
        let split = r.split_images(&images(&["api", "worker"]), src).unwrap();
        assert_eq!(split["api"], images(&["api"]));
        assert_eq!(split["worker"], images(&["worker"]));
        let e = r
            .split_images(&images(&["api", "worker", "cron"]), src)
            .unwrap_err();
        assert!(
            e.contains("imagedefinitions.json: entry \"cron\" matches no service"),
            "{e}"
        );
        let e = r.split_images(&images(&["api"]), src).unwrap_err();
        assert!(e.contains("no entry for service \"worker\""), "{e}");
    }
}
