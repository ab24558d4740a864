// Package fssync is check_pbx_fs_sync: it compares this node's synced
// directories with the peer's by merging two manifests (lib/fssync/manifest)
// as sorted streams — this node's from its own walk, the peer's from
// pbxha-peer's `manifest` subcommand over SSH — and judges the differences
// and the age of the oldest change the peer has not got yet.
package fssync
