//! Whether `DATA_DIR` is a directory the host preopened for writing, asked of the preopen's
//! descriptor flags, so `VISIT_STORE=auto` decides without writing a probe file on every
//! request. Spin's `files` mounts are read-only unless `--allow-transient-write`;
//! containerd-shim-spin's always are.

use std::path::Path;
use wasi::filesystem::preopens::get_directories;
use wasi::filesystem::types::DescriptorFlags;

pub fn is_preopened_writable(data_dir: &Path) -> bool {
    get_directories()
        .into_iter()
        .filter(|(_, guest_path)| data_dir.starts_with(guest_path))
        // The innermost preopen holding DATA_DIR is the one its files are opened through.
        .max_by_key(|(_, guest_path)| guest_path.len())
        .and_then(|(descriptor, _)| descriptor.get_flags().ok())
        .is_some_and(|flags| flags.contains(DescriptorFlags::MUTATE_DIRECTORY))
}
