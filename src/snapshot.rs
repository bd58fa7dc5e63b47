//! Going live from a snapshot: the shell's part, which finds and reads the mapping file. The
//! reading of the CSV into events is pure and lives in the core ([`driftwatch_core::snapshot`],
//! re-exported here). Must not touch the store.

pub use driftwatch_core::snapshot::*;

use crate::config::ConfigSource;
use crate::diagnostic::Diagnostic;
use std::path::Path;

/// The mapping in a file.
pub fn load_mapping(path: &Path) -> Result<Mapping, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::whole_file(path, format!("cannot read the snapshot mapping: {e}"))
    })?;
    Mapping::from_text(path, &text)
}

/// The mapping named, else `snapshot-mapping.yaml` beside the config file, else the one built
/// into the binary.
pub fn find_mapping(named: Option<&Path>, config: &ConfigSource) -> Result<Mapping, Diagnostic> {
    if let Some(path) = named {
        return load_mapping(path);
    }
    if let ConfigSource::File(config) = config {
        let beside = config
            .parent()
            .unwrap_or(Path::new("."))
            .join("snapshot-mapping.yaml");
        if beside.is_file() {
            return load_mapping(&beside);
        }
    }
    let built_in = Path::new(crate::sources::BUILT_IN).join("snapshot-mapping.yaml");
    Mapping::from_text(&built_in, crate::sources::SNAPSHOT_MAPPING)
}
