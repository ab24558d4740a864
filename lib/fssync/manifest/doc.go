// Package manifest is the file list both nodes exchange to compare their
// synced directories: one line per entry (relative path, type, size,
// mtime in nanoseconds, mode, optional content hash, symlink target), in
// the order filepath.WalkDir visits them, so two manifests can be merged
// as streams without holding either in memory. pbxha-peer writes it
// (lib/peer's `manifest` subcommand) and check_pbx_fs_sync reads it
// (lib/fssync); it has no dependency on either.
package manifest
