// Package sip is check_pbx_sip: one SIP OPTIONS request to the PBX over
// UDP, TCP or TLS, judged by its final response code (--accept) and its
// round-trip time (-w/-c).
//
// OPTIONS is the keepalive that phones, trunks and proxies send (RFC 3261
// section 11): a SIP stack that answers it is parsing and routing requests.
//
// The SIP side is github.com/emiago/sipgo: its transaction layer retransmits
// over UDP per RFC 3261 Timer A/E (T1 = 0.5 s doubling up to T2 = 4 s), its
// parser reads the answer. Two parts are ours (probe.go says why): the UDP
// socket, so that an ICMP port unreachable is seen at once instead of as a
// silence, and the logging, which sipgo sends to stderr by default where
// Icinga would show it as the check's output.
//
// Turning the flags and cluster.toml into a request (target.go, accept.go)
// and judging the outcome (evaluate.go) are pure and table-tested; probe.go
// does the network part.
package sip
