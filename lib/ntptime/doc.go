// Package ntptime is check_pbx_time: how far this node's clock is from the
// NTP servers it should follow, and, with --local, whether the node's own
// time daemon (chronyd, else systemd-timesyncd) says the clock is
// synchronised.
//
// A PBX needs sane time: call detail records are billed by it, TLS
// certificates are checked against it, and phones' registration expiries
// tolerate about a second.
//
// Servers are asked with SNTP (github.com/beevik/ntp), concurrently, each
// bounded by the check's deadline; chronyd is asked over its command
// protocol (github.com/facebook/time/ntp/chrony), the one chronyc uses, on
// its UNIX socket or on UDP port 323. Reading (sntp.go, local.go) is split
// from evaluation (evaluate.go), which is pure and table-tested.
package ntptime
