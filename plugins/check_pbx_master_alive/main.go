// Command check_pbx_master_alive runs on the slave of a pbxha cluster and
// tells whether the master still answers on its telephony and its cluster
// IP (failover class: both silent is CRITICAL, and the event handler
// promotes the slave). See lib/masteralive for the states and lib/probe for
// how probing works.
//
// It needs CAP_NET_RAW for ICMP unless net.ipv4.ping_group_range admits the
// nagios user's group: `make install` sets the capability.
package main

import (
	"pbxha/lib/masteralive"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(masteralive.Spec()) }
