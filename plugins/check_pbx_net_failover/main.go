// Command check_pbx_net_failover checks, on the slave of a pbxha cluster,
// whether the master still reaches the telephony network that the slave
// reaches (failover class). See lib/netfailover for the checks and their
// states.
package main

import (
	"pbxha/lib/netfailover"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(netfailover.Spec()) }
