// Command check_pbx_fs_sync compares this node's synced directories with
// the peer's copy over SSH (pbxha-peer manifest) and reports what is
// missing, extra or different there and how old the oldest unsynced
// change is. It runs on both nodes of a pbxha cluster (notify class). See
// lib/fssync.
package main

import (
	"pbxha/lib/fssync"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(fssync.Spec()) }
