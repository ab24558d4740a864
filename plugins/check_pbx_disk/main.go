// Command check_pbx_disk is the pbxha check of free space and inodes, run
// on both nodes. The logic lives in pbxha/lib/disk.
package main

import (
	"pbxha/lib/disk"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(disk.Spec()) }
