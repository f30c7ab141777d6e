//! Walking the source tree (shared by tests/layers.rs and tests/error_codes.rs through
//! `#[path = "common/files.rs"] mod files;`, so neither pulls in the server harness).

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, in a stable order.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("readable source tree").into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect()
}
