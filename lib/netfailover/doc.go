// Package netfailover is check_pbx_net_failover, run on the slave: can the
// master still reach the telephony network (gateways, SIP trunks, the
// phones' router) that the slave can reach?
//
// The slave probes the targets itself (lib/probe) and, at the same time,
// asks the master over SSH (lib/peer) to probe the same targets with the
// same options from its side. It is failover class, so CRITICAL is kept
// for the one case a failover mends: the master reaches fewer than
// --min-targets while the slave reaches at least that many. When neither
// reaches them the telephony network itself is down, and moving every call
// to the other node would only cut them: WARNING. When the master cannot be
// asked at all the verdict belongs to check_pbx_master_alive: UNKNOWN.
// When the slave cannot send its own probes (ICMP without CAP_NET_RAW) it
// has no view to compare: UNKNOWN, naming CAP_NET_RAW.
//
// Reading (check.go) is split from evaluation (evaluate.go), which is pure
// and table-tested.
package netfailover
