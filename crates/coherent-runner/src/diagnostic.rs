//! Manifest problems rendered like a compiler: `file:line:col`, the line, a caret, help.

use coherent_core::ConfigError;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The manifest file.
    pub file: PathBuf,
    /// Line (1-based), when the problem has a location.
    pub line: Option<usize>,
    /// Column (1-based, in characters).
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it (e.g. the valid choices).
    pub help: Option<String>,
    /// A warning (the manifest still works) rather than an error.
    pub warning: bool,
    /// Where the problem arose, when the location alone does not say (the run of a sweep).
    pub note: Option<String>,
    snippet: Option<(String, usize, usize)>,
}

impl Diagnostic {
    /// A diagnostic at byte range `span` of `source`.
    pub fn at(
        file: &Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let mut d = Diagnostic {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
            warning: false,
            note: None,
            snippet: None,
        };
        if let Some(span) = span {
            // Spans are byte offsets; keep them on character boundaries whatever their origin.
            let mut start = span.start.min(source.len());
            while !source.is_char_boundary(start) {
                start -= 1;
            }
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = source[start..]
                .find('\n')
                .map_or(source.len(), |i| start + i);
            let line = source[..start].matches('\n').count() + 1;
            let column = source[line_start..start].chars().count() + 1;
            let mut end = span.end.clamp(start, line_end);
            while !source.is_char_boundary(end) {
                end += 1;
            }
            let width = source[start..end].chars().count().max(1);
            d.line = Some(line);
            d.column = Some(column);
            d.snippet = Some((source[line_start..line_end].to_string(), column, width));
        }
        d
    }

    /// A diagnostic from a plugin's [`ConfigError`].
    pub fn from_config(file: &Path, source: &str, error: ConfigError) -> Diagnostic {
        let mut d = Diagnostic::at(file, source, error.span, error.message);
        d.help = error.help;
        d
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The same problem as a warning.
    pub fn into_warning(mut self) -> Diagnostic {
        self.warning = true;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        let severity = if self.warning { "warning" } else { "error" };
        writeln!(f, ": {severity}: {}", self.message)?;
        if let (Some((text, column, width)), Some(line)) = (&self.snippet, self.line) {
            let gutter = line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            writeln!(
                f,
                "{:gutter$} | {}{}",
                "",
                " ".repeat(column - 1),
                "^".repeat(*width)
            )?;
        }
        if let Some(note) = &self.note {
            writeln!(f, "  = note: {note}")?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one manifest.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the manifest",
            if n == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_caret_and_help() {
        let src = "a = 1\nlabel_noise = 1.5\n";
        let at = src.find("1.5").unwrap();
        let d =
            Diagnostic::at(Path::new("m.toml"), src, Some(at..at + 3), "bad").with_help("use 0..1");
        assert_eq!((d.line, d.column), (Some(2), Some(15)));
        let text = d.to_string();
        assert!(text.starts_with("m.toml:2:15: error: bad"), "{text}");
        assert!(text.contains("2 | label_noise = 1.5"));
        assert!(text.contains(&format!("{}^^^", " ".repeat(14))), "{text}");
        assert!(text.contains("help: use 0..1"));
    }

    #[test]
    fn spans_inside_a_character_snap_to_its_boundaries() {
        let src = "a = \"\u{e9}t\u{e9}\"\n";
        let d = Diagnostic::at(Path::new("m.toml"), src, Some(6..8), "bad");
        assert_eq!((d.line, d.column), (Some(1), Some(6)));
        assert!(d.to_string().contains("     ^^"), "{d}");
    }
}
