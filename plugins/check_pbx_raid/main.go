// Command check_pbx_raid checks the Linux md arrays and 3ware RAID units
// of a PBX node; see package pbxha/lib/raid.
package main

import (
	"pbxha/lib/plugin"
	"pbxha/lib/raid"
)

func main() { plugin.Run(raid.Spec()) }
