// Command bench runs each local pbxha check beside its monitoring-plugins
// peer on the same work (the same mount, the same NTP server, the same
// process, the same mdstat text) and prints the medians of wall time, CPU
// time and peak RSS with the ratios ours/peer as a Markdown table, so a
// claim that our checks cost no more than the C plugins they replace is
// measured on the machine at hand rather than asserted.
//
// Usage (from the module root, after make build):
//
//	go run ./scripts/bench -bin bin [-n 30] [-out bench.md]
//
// It starts what the pairs need and stops it at the end: a chronyd on a
// free loopback port, a process named pbxbenchd (a copy of /bin/sleep) and
// a copy of the Perl check_raid whose /proc/mdstat path points at the
// fixture.
package main
