// Command check_pbx_rsync checks the rsync daemon that receives the
// master's file sync: greeting, module list, the sync user's login and,
// with --canary, a real transfer. It runs on the slave of a pbxha cluster
// (notify class) against its own daemon on the cluster IP. See lib/rsyncd.
package main

import (
	"pbxha/lib/plugin"
	"pbxha/lib/rsyncd"
)

func main() { plugin.Run(rsyncd.Spec()) }
