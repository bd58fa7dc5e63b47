//! Diagnostics an admin reads: `file:line:column: message`.
//!
//! Owns the one shape every configuration, calendar, rules and template error takes, so that `check`
//! can list them all and an editor can jump to each. Must not decide what is an error: loaders do.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a file an admin edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &Path, position: Option<(usize, usize)>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            position,
            message: message.into(),
        }
    }

    /// A problem with the file as a whole (missing, unreadable).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, None, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                line,
                column,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem found in one load, so an admin fixes them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Turns a serde_yaml error into a diagnostic, moving its location into the prefix.
pub fn from_yaml_error(file: &Path, err: &serde_yaml::Error) -> Diagnostic {
    let position = err.location().map(|l| (l.line(), l.column()));
    let mut message = err.to_string();
    // serde_yaml appends " at line N column M"; the prefix already says where.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    Diagnostic::new(file, position, message)
}
