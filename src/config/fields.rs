//! Checks shared by the sections: a section read by kind, non-empty strings,
//! counts, slot pairs and ARNs, each error located and naming the field.

use crate::diag::{InputError, SourceFile};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::Spanned;

/// Only the `kind` of a section, read first to pick the section's shape.
#[derive(Debug, Deserialize)]
pub struct RawKind {
    /// The kind named in the section.
    pub kind: Option<Spanned<String>>,
}

/// `{ fleet = T }`, to read the fleet section as a given shape.
#[derive(Debug, Deserialize)]
pub struct FleetSection<T> {
    /// The section.
    pub fleet: T,
}

/// `{ router = T }`, to read the router section as a given shape.
#[derive(Debug, Deserialize)]
pub struct RouterSection<T> {
    /// The section.
    pub router: T,
}

pub(super) fn section_kind(
    file: &SourceFile,
    value: &Spanned<toml::Value>,
    section: &str,
    kinds: &[&str],
) -> Result<String, InputError> {
    if !value.get_ref().is_table() {
        return Err(file.error(
            value.span(),
            section,
            format!("[{section}] must be a table"),
        ));
    }
    let k: FleetSection<RawKind> = match section {
        "fleet" => toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?,
        _ => {
            let r: RouterSection<RawKind> =
                toml::from_str(&file.text).map_err(|e| file.toml_error(&e))?;
            FleetSection { fleet: r.router }
        }
    };
    let expected = kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(kind) = k.fleet.kind else {
        return Err(file.error(
            value.span(),
            &format!("{section}.kind"),
            format!("missing `kind`: one of {expected}"),
        ));
    };
    if !kinds.contains(&kind.get_ref().as_str()) {
        return Err(file.error(
            kind.span(),
            &format!("{section}.kind"),
            format!(
                "unknown kind {:?}: expected one of {expected}",
                kind.get_ref()
            ),
        ));
    }
    Ok(kind.into_inner())
}

pub(super) fn section<T: DeserializeOwned>(file: &SourceFile) -> Result<T, InputError> {
    toml::from_str(&file.text).map_err(|e| file.toml_error(&e))
}

pub(super) fn non_empty(
    file: &SourceFile,
    v: &Spanned<String>,
    field: &str,
) -> Result<String, InputError> {
    if v.get_ref().trim().is_empty() {
        return Err(file.error(v.span(), field, "must not be empty"));
    }
    Ok(v.get_ref().clone())
}

pub(super) fn count(
    file: &SourceFile,
    v: Option<&Spanned<i64>>,
    field: &str,
    default: u32,
) -> Result<u32, InputError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=1000).contains(n.get_ref()) => Ok(*n.get_ref() as u32),
        Some(n) => Err(file.error(
            n.span(),
            field,
            format!("must be 1..=1000, got {}", n.get_ref()),
        )),
    }
}

pub(super) fn pair(
    file: &SourceFile,
    v: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    what: &str,
) -> Result<Vec<String>, InputError> {
    let n = v.get_ref().len();
    if !(1..=2).contains(&n) {
        return Err(file.error(
            v.span(),
            field,
            format!("give two {what} (slot A, slot B), or one for a rolling-only service; got {n}"),
        ));
    }
    let out: Vec<String> = v
        .get_ref()
        .iter()
        .enumerate()
        .map(|(i, s)| non_empty(file, s, &format!("{field}[{i}]")))
        .collect::<Result<_, _>>()?;
    if n == 2 && out[0] == out[1] {
        return Err(file.error(
            v.get_ref()[1].span(),
            &format!("{field}[1]"),
            format!("the two slots must differ, both are {:?}", out[0]),
        ));
    }
    Ok(out)
}

pub(super) fn arn(
    file: &SourceFile,
    v: &Spanned<String>,
    field: &str,
    service: &str,
    resource: &str,
) -> Result<String, InputError> {
    let s = v.get_ref();
    let ok = s.starts_with("arn:") && s.split(':').nth(2) == Some(service) && s.contains(resource);
    if !ok {
        return Err(file.error(
            v.span(),
            field,
            format!(
                "expected an ARN like arn:aws:{service}:REGION:ACCOUNT{resource}..., got {s:?}"
            ),
        ));
    }
    Ok(s.clone())
}
