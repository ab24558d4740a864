// Package ami is check_pbx_ami: whether Asterisk's Manager Interface
// answers — connect (TCP or TLS), greeting, login, Ping, CoreStatus,
// logoff — with the Ping round trip, the current calls and the uptime
// held against thresholds.
//
// Messages are parsed and built with github.com/staskobzar/goami2
// (goami2.Parse, goami2.Message), but its Client is not used: it reads the
// greeting and the login response with one Read each (a greeting or
// response split over two TCP segments fails), its fixed 1 s login
// deadline races Asterisk's 1 s delay before "Authentication failed" (a
// wrong secret looks like a timeout), its login takes no context and no
// ActionID, and its reader drops messages a slow consumer does not take
// within 10 ms. The framing here (frame.go) reads through a buffer with
// the check's deadline on every read and write, matches responses by
// ActionID and skips the events in between.
//
// Reading (frame.go, client.go, probe.go) is split from parsing
// (message.go) and evaluation (evaluate.go), which are pure and
// table-tested; the framing and parsing are fuzzed.
package ami
