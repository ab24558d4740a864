// Package masteralive is check_pbx_master_alive, the slave's view of the
// master: does the master answer on its telephony IP and on its cluster IP?
// Both paths silent means the master is dead (or cut off from everything),
// and the failover may start: CRITICAL. One path silent is a network fault,
// not a dead master: WARNING naming the path. The paths are probed at the
// same time (lib/probe), so the verdict on a dead master comes after one
// probe budget, 0.4 s with the defaults.
//
// One answer among the probes of a path is enough for "reachable": a slow
// or lossy path must never read as a dead master, since a failover cuts
// every call in progress. Loss and round trip show in perfdata and may warn
// (--pl-warning, --rta-warning), never more. A path that could not be
// probed at all (ICMP with neither CAP_NET_RAW nor a ping socket) is
// UNKNOWN, naming CAP_NET_RAW: a missing capability must not promote the
// slave.
//
// ICMP and TCP are answered by the master's kernel even when every process
// on it is stopped (a hung machine: the kernel completes TCP handshakes into
// the listener's backlog). --method banner asks for an application's
// greeting (sshd, the AMI, MariaDB, rsyncd speak first) instead, so a hung
// master reads as dead; --port tel:N / clu:N choose the service per path.
//
// Reading (check.go: flags, cluster.toml, probing) is split from evaluation
// (evaluate.go: two path results and a policy to a plugin.Result), which is
// pure and table-tested.
package masteralive
