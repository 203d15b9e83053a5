//! Built-in strategies, embedded from `strategies/*.toml` at build time.

use super::Strategy;
use crate::diag::SourceFile;

/// (name, file text) of every built-in, in the order `teal strategies` lists them.
const BUILTINS: &[(&str, &str)] = &[
    (
        "all-at-once",
        include_str!("../../strategies/all-at-once.toml"),
    ),
    (
        "canary-10-5m",
        include_str!("../../strategies/canary-10-5m.toml"),
    ),
    (
        "canary-10-15m",
        include_str!("../../strategies/canary-10-15m.toml"),
    ),
    (
        "linear-10-every-1m",
        include_str!("../../strategies/linear-10-every-1m.toml"),
    ),
    (
        "linear-10-every-3m",
        include_str!("../../strategies/linear-10-every-3m.toml"),
    ),
    (
        "stepped-5-25-50",
        include_str!("../../strategies/stepped-5-25-50.toml"),
    ),
    ("rolling", include_str!("../../strategies/rolling.toml")),
];

/// Names of the built-in strategies, in listing order.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// A built-in strategy by name.
pub fn builtin(name: &str) -> Option<Strategy> {
    let (n, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    let file = SourceFile::new(format!("strategies/{n}.toml (built-in)"), *text);
    // Built-ins are checked by the test below; a broken one is a build bug.
    Some(
        Strategy::parse(n, &file)
            .unwrap_or_else(|e| panic!("built-in strategy {n} is invalid: {e}")),
    )
}

/// Every built-in strategy.
pub fn builtins() -> Vec<Strategy> {
    BUILTINS
        .iter()
        .map(|(n, _)| builtin(n).expect("listed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_names_agree() {
        assert!(builtin_names().count() >= 6);
        for s in builtins() {
            if let Some(steps) = s.steps() {
                assert_eq!(steps.last().unwrap().weight, 100, "{}", s.name);
            }
        }
        assert_eq!(
            builtin("canary-10-5m").unwrap().steps().unwrap()[0].bake_ms,
            300_000
        );
        assert_eq!(
            builtin("linear-10-every-3m")
                .unwrap()
                .steps()
                .unwrap()
                .len(),
            10
        );
        assert!(builtin("nope").is_none());
    }
}
