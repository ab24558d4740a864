// Command check_pbx_cluster checks, on the master of a pbxha cluster, that
// this node is master at the current epoch, holds the VIP, that no other
// machine answers ARP for the VIP and that the peer is its slave (failover
// class). See lib/clustercheck for the checks and their states.
package main

import (
	"pbxha/lib/clustercheck"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(clustercheck.Spec()) }
