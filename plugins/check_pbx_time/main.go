// Command check_pbx_time checks this node's clock against NTP servers and,
// with --local, the node's own time daemon (chronyd or systemd-timesyncd).
// It runs on both nodes of a pbxha cluster (notify class). See
// lib/ntptime for the checks and their states.
package main

import (
	"pbxha/lib/ntptime"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(ntptime.Spec()) }
