//! Rules files and templates as text: what the rules loader and the template engine take. The
//! shell reads them from a council's folders or from the copies built into the binary; the core
//! never opens a file.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One file's text and the name messages give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Template folders by name, each part (`subject.txt`, ...) by file name.
pub type TemplateFiles = BTreeMap<String, BTreeMap<String, SourceFile>>;
