//! What a CodePipeline hands the last stage: the files earlier actions wrote
//! and the variables CodeBuild sets. Parsing only, no I/O beyond reading the
//! file, so a malformed input is refused before any cloud call.
//!
//! - `imagedefinitions.json`, written by a build for the ECS deploy action:
//!   `[{"name": "app", "imageUri": "123.dkr.ecr.../app:abc"}]`.
//! - `imageDetail.json`, written by the ECR source action:
//!   `{"ImageURI": "123.dkr.ecr.../app@sha256:...", ...}`.
//! - `packer-manifest.json`, written by Packer's manifest post-processor:
//!   `{"builds": [{"artifact_id": "eu-west-1:ami-0abc,us-east-1:ami-0def",
//!   "packer_run_uuid": "...", ...}], "last_run_uuid": "..."}`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A pipeline file that cannot be used, with what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {why}", path.display())]
pub struct InputError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, in words.
    pub why: String,
}

fn err(path: &Path, why: impl Into<String>) -> InputError {
    InputError {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn read(path: &Path) -> Result<String, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
    if text.trim().is_empty() {
        return Err(err(path, "the file is empty"));
    }
    Ok(text)
}

#[derive(Deserialize)]
struct ImageDefinition {
    name: Option<String>,
    #[serde(rename = "imageUri")]
    image_uri: Option<String>,
}

/// `imagedefinitions.json`: container name → image URI, in file order by name.
/// Refused: not a JSON list, an empty list, an entry without a name or an
/// image, an empty one, or a container named twice.
pub fn image_definitions(path: &Path) -> Result<BTreeMap<String, String>, InputError> {
    let text = read(path)?;
    let list: Vec<ImageDefinition> = serde_json::from_str(&text).map_err(|e| {
        err(
            path,
            format!("not a list of {{\"name\", \"imageUri\"}} objects ({e})"),
        )
    })?;
    if list.is_empty() {
        return Err(err(path, "the list is empty: no container to deploy"));
    }
    let mut images = BTreeMap::new();
    for (i, d) in list.into_iter().enumerate() {
        let name = d
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| err(path, format!("entry {i} has no \"name\"")))?;
        let uri = d
            .image_uri
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| err(path, format!("entry {i} ({name}) has no \"imageUri\"")))?;
        if images.insert(name.clone(), uri).is_some() {
            return Err(err(path, format!("container {name:?} is named twice")));
        }
    }
    Ok(images)
}

#[derive(Deserialize)]
struct ImageDetail {
    #[serde(rename = "ImageURI")]
    image_uri: Option<String>,
}

/// `imageDetail.json`: the image URI the ECR source action saw.
pub fn image_detail(path: &Path) -> Result<String, InputError> {
    let text = read(path)?;
    let detail: ImageDetail = serde_json::from_str(&text)
        .map_err(|e| err(path, format!("not an ECR image detail object ({e})")))?;
    detail
        .image_uri
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| err(path, "no \"ImageURI\""))
}

#[derive(Deserialize)]
struct PackerManifest {
    builds: Option<Vec<PackerBuild>>,
    last_run_uuid: Option<String>,
}

#[derive(Deserialize)]
struct PackerBuild {
    name: Option<String>,
    artifact_id: Option<String>,
    packer_run_uuid: Option<String>,
}

/// The AMI `packer-manifest.json`'s last run built for `region`. The manifest
/// keeps every run's builds (the post-processor appends); `last_run_uuid`
/// names the newest run. Refused: a malformed manifest, no build for the
/// region in any run, a region built only by an older run (stale: the last
/// run did not build it, so deploying it would deploy an old image), several
/// builds of the last run for the region (which one is meant?), or an
/// artifact that is not an AMI id.
pub fn packer_ami(path: &Path, region: &str) -> Result<String, InputError> {
    let text = read(path)?;
    let manifest: PackerManifest = serde_json::from_str(&text).map_err(|e| {
        err(
            path,
            format!("not a Packer manifest ({{\"builds\", \"last_run_uuid\"}}): {e}"),
        )
    })?;
    let builds = manifest
        .builds
        .filter(|b| !b.is_empty())
        .ok_or_else(|| err(path, "no \"builds\": the manifest lists no build"))?;
    let last = manifest
        .last_run_uuid
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            err(
                path,
                "no \"last_run_uuid\": which run is the newest is unknown",
            )
        })?;
    // Each build's AMI in `region`, with its run.
    let mut found = vec![];
    for (i, b) in builds.iter().enumerate() {
        let artifact = b.artifact_id.as_deref().unwrap_or("");
        for entry in artifact.split(',').filter(|e| !e.is_empty()) {
            let Some((r, ami)) = entry.split_once(':') else {
                return Err(err(
                    path,
                    format!("build {i}: artifact_id {artifact:?} is not REGION:AMI, ... (an amazon-ebs build's)"),
                ));
            };
            if r == region {
                let name = b.name.clone().unwrap_or_else(|| format!("build {i}"));
                found.push((
                    name,
                    ami.to_string(),
                    b.packer_run_uuid.clone().unwrap_or_default(),
                ));
            }
        }
    }
    let newest: Vec<&(String, String, String)> =
        found.iter().filter(|(_, _, run)| *run == last).collect();
    let (name, ami) = match (newest.as_slice(), found.last()) {
        ([one], _) => (one.0.clone(), one.1.clone()),
        ([], None) => {
            return Err(err(
                path,
                format!("no build made an AMI in {region}; the builds' regions are in their artifact_id"),
            ))
        }
        ([], Some((name, ami, run))) => {
            return Err(err(
                path,
                format!(
                    "stale: the last run ({last}) built no AMI in {region}; the newest there is {ami} \
                     ({name}) of run {run}. Build for {region}, or pass --ami to deploy it knowingly"
                ),
            ))
        }
        (many, _) => {
            let names: Vec<&str> = many.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(err(
                path,
                format!(
                    "the last run made {} AMIs in {region} ({}): pass the one to deploy with --ami",
                    many.len(),
                    names.join(", ")
                ),
            ));
        }
    };
    let hex = ami.strip_prefix("ami-").unwrap_or("");
    if !(8..=17).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            path,
            format!("{name}: {ami:?} in {region} is not an AMI id"),
        ));
    }
    Ok(ami)
}

/// The tag or digest of an image URI, for a revision label:
/// `repo/app:abc` → `abc`, `repo/app@sha256:0123…` → `sha256:0123…`.
pub fn image_version(uri: &str) -> Option<&str> {
    if let Some((_, digest)) = uri.split_once('@') {
        return Some(digest);
    }
    // A registry with a port (`host:5000/app`) has a ':' before the last '/'.
    let name = uri.rsplit('/').next()?;
    name.split_once(':').map(|(_, tag)| tag)
}

/// The CodeBuild run teal is part of, from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Build {
    /// `CODEBUILD_BUILD_ID`.
    pub id: String,
    /// `CODEBUILD_INITIATOR`: `codepipeline/NAME` or the IAM user, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
}

impl Build {
    /// The build from the process environment, when teal runs in CodeBuild.
    pub fn from_env() -> Option<Build> {
        Build::from_vars(|k| std::env::var(k).ok())
    }

    /// The build from `var` (the environment, or a test's map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Build> {
        let id = var("CODEBUILD_BUILD_ID").filter(|v| !v.is_empty())?;
        Some(Build {
            id,
            initiator: var("CODEBUILD_INITIATOR").filter(|v| !v.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn image_definitions_read_every_container() {
        let (_d, p) = file(
            r#"[{"name":"app","imageUri":"1.dkr.ecr.us-east-1.amazonaws.com/app:abc"},
                {"name":"envoy","imageUri":"public.ecr.aws/envoy:v1"}]"#,
        );
        let images = image_definitions(&p).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images["envoy"], "public.ecr.aws/envoy:v1");
    }

    #[test]
    fn bad_image_definitions_name_the_file_and_the_fault() {
        for (text, says) in [
            ("", "the file is empty"),
            ("  \n", "the file is empty"),
            ("[]", "the list is empty"),
            ("{\"name\":\"app\"}", "not a list"),
            ("[{\"name\":\"app\"}]", "entry 0 (app) has no \"imageUri\""),
            ("[{\"imageUri\":\"x:1\"}]", "entry 0 has no \"name\""),
            (
                "[{\"name\":\"a\",\"imageUri\":\"\"}]",
                "has no \"imageUri\"",
            ),
            (
                "[{\"name\":\"a\",\"imageUri\":\"x:1\"},{\"name\":\"a\",\"imageUri\":\"x:2\"}]",
                "named twice",
            ),
        ] {
            let (_d, p) = file(text);
            let e = image_definitions(&p).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.starts_with(&p.display().to_string()), "{e}");
        }
        let missing = image_definitions(Path::new("/nonexistent/imagedefinitions.json"));
        assert!(missing
            .unwrap_err()
            .to_string()
            .starts_with("/nonexistent/imagedefinitions.json: "));
    }

    #[test]
    fn image_detail_gives_the_uri() {
        let (_d, p) = file(
            r#"{"ImageSizeInBytes":"1","ImageDigest":"sha256:ab","Version":"1.0",
                "RegistryId":"1","RepositoryName":"app",
                "ImageURI":"1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:ab","ImageTags":["v7"]}"#,
        );
        assert_eq!(
            image_detail(&p).unwrap(),
            "1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:ab"
        );
        let (_d, p) = file(r#"{"RepositoryName":"app"}"#);
        assert!(image_detail(&p)
            .unwrap_err()
            .to_string()
            .ends_with("no \"ImageURI\""));
        let (_d, p) = file("[1]");
        assert!(image_detail(&p)
            .unwrap_err()
            .to_string()
            .contains("not an ECR image detail object"));
    }

    #[test]
    fn a_packer_manifest_gives_the_last_runs_ami_of_the_region() {
        let manifest = r#"{"builds": [
            {"name": "web", "builder_type": "amazon-ebs", "build_time": 1700000000,
             "artifact_id": "eu-west-1:ami-0aaaaaaaaaaaaaaa1,us-east-1:ami-0aaaaaaaaaaaaaaa2",
             "packer_run_uuid": "run-1"},
            {"name": "web", "builder_type": "amazon-ebs", "build_time": 1700100000,
             "artifact_id": "eu-west-1:ami-0bbbbbbbbbbbbbbb1",
             "packer_run_uuid": "run-2"}],
            "last_run_uuid": "run-2"}"#;
        let (_d, p) = file(manifest);
        assert_eq!(
            packer_ami(&p, "eu-west-1").unwrap(),
            "ami-0bbbbbbbbbbbbbbb1"
        );
        // us-east-1 was built by run 1 only: stale.
        let e = packer_ami(&p, "us-east-1").unwrap_err().to_string();
        assert!(
            e.contains("stale: the last run (run-2) built no AMI in us-east-1"),
            "{e}"
        );
        assert!(e.contains("ami-0aaaaaaaaaaaaaaa2"), "{e}");
        let e = packer_ami(&p, "ap-south-1").unwrap_err().to_string();
        assert!(e.contains("no build made an AMI in ap-south-1"), "{e}");
    }

    #[test]
    fn bad_packer_manifests_name_the_file_and_the_fault() {
        let twice = r#"{"builds": [
            {"name": "a", "artifact_id": "eu-west-1:ami-0123456789abcdef0", "packer_run_uuid": "r"},
            {"name": "b", "artifact_id": "eu-west-1:ami-0123456789abcdef1", "packer_run_uuid": "r"}],
            "last_run_uuid": "r"}"#;
        for (text, says) in [
            ("", "the file is empty"),
            ("[1]", "not a Packer manifest"),
            ("{\"builds\": [], \"last_run_uuid\": \"r\"}", "lists no build"),
            (
                "{\"builds\": [{\"artifact_id\": \"eu-west-1:ami-01234567\"}]}",
                "no \"last_run_uuid\"",
            ),
            (
                "{\"builds\": [{\"artifact_id\": \"sha256:0\", \"packer_run_uuid\": \"r\"}], \"last_run_uuid\": \"r\"}",
                "no build made an AMI",
            ),
            (
                "{\"builds\": [{\"artifact_id\": \"docker-image\", \"packer_run_uuid\": \"r\"}], \"last_run_uuid\": \"r\"}",
                "is not REGION:AMI",
            ),
            (
                "{\"builds\": [{\"artifact_id\": \"eu-west-1:snap-0123\", \"packer_run_uuid\": \"r\"}], \"last_run_uuid\": \"r\"}",
                "is not an AMI id",
            ),
            (twice, "the last run made 2 AMIs in eu-west-1 (a, b)"),
        ] {
            let (_d, p) = file(text);
            let e = packer_ami(&p, "eu-west-1").unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.starts_with(&p.display().to_string()), "{e}");
        }
    }

    #[test]
    fn image_versions_are_tags_or_digests() {
        assert_eq!(image_version("repo/app:abc"), Some("abc"));
        assert_eq!(image_version("host:5000/app:v2"), Some("v2"));
        assert_eq!(image_version("host:5000/app"), None);
        assert_eq!(image_version("app@sha256:01"), Some("sha256:01"));
    }

    #[test]
    fn the_build_comes_from_codebuild_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Build::from_vars(vars(&[])), None);
        assert_eq!(
            Build::from_vars(vars(&[
                ("CODEBUILD_BUILD_ID", "proj:1234"),
                ("CODEBUILD_INITIATOR", "codepipeline/shop")
            ])),
            Some(Build {
                id: "proj:1234".into(),
                initiator: Some("codepipeline/shop".into())
            })
        );
    }
}
