// Package rsyncd is check_pbx_rsync: whether the rsync daemon that receives
// the master's file sync answers, lists the modules it should, accepts the
// sync user's password and, with --canary, really moves a file.
//
// The master pushes its configuration, voicemail and recordings into the
// slave's module (pbx) over the cluster network, so on the slave the check
// asks its own daemon, on its own cluster IP: if that daemon is gone, the
// next push fails and a later failover brings up stale files.
//
// The daemon's opening exchange is a few text lines (clientserver.c,
// exchange_protocols and start_inband_exchange; authenticate.c): the
// greeting "@RSYNCD: <protocol>.<sub> <auth digests>", ours, then an empty
// line for the module list (ended by "@RSYNCD: EXIT") or a module name,
// answered by "@RSYNCD: AUTHREQD <challenge>", "@RSYNCD: OK" or "@ERROR:
// ...". That is written here (proto.go, session.go) with the check's
// deadline on every read and write: the one Go implementation of rsync
// (gokrazy/rsync) is not a dependency and stops at protocol 27. The real
// transfer of --canary is left to the rsync binary (canary.go), run in its
// own session and killed at the deadline.
//
// Parsing (proto.go) and evaluation (evaluate.go) are pure and table-tested;
// the greeting and module-list parser is fuzzed.
package rsyncd
