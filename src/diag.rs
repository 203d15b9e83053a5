//! Errors that point into a file: `teal.toml:7:10: strategy.steps[1].weight ...`.
//!
//! Config and strategy files share this type so that every input error names
//! the file, line, column and field, and says what would be valid. It is a
//! [`miette::Diagnostic`], so on a terminal the offending line is drawn too.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::sync::Arc;

/// An input file's name and text, kept to locate spans.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown to people (a path, or `strategies/x.toml (built-in)`).
    pub name: String,
    /// The file's text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wrap a file's name and contents.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// An error at `span` about `field`.
    pub fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> InputError {
        let (line, col) = self.line_col(span.start);
        InputError {
            file: self.name.clone(),
            line,
            col,
            field: field.to_string(),
            message: message.into(),
            src: NamedSource::new(self.name.clone(), self.text.to_string()),
            span: (span.start, span.end.saturating_sub(span.start)).into(),
        }
    }

    /// Turn a TOML parse/deserialise error into an [`InputError`].
    pub fn toml_error(&self, e: &toml::de::Error) -> InputError {
        let span = e.span().unwrap_or(0..0);
        // toml's message is one line; its Display adds a snippet we draw ourselves.
        let message = e.message().trim().to_string();
        self.error(span, "", message)
    }
}

/// A bad value in an input file, located precisely.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{col}: {}{message}", field_prefix(field))]
pub struct InputError {
    /// The file's name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Dotted field path (`strategy.steps[1].weight`), empty when unknown.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let f = SourceFile::new("t.toml", "a = 1\nbb = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(11), (2, 6));
        let e = f.error(11..12, "bb", "must be 1");
        assert_eq!(e.to_string(), "t.toml:2:6: bb: must be 1");
    }
}
