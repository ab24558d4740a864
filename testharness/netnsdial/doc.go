// Package netnsdial opens sockets inside a named network namespace
// (/run/netns/NAME, as made by `ip netns add`) from a process that runs in
// another one, normally the root namespace of a test.
//
// The lab's addresses (192.0.2.0/24, 198.51.100.0/24) exist only inside its
// namespaces, so a test that wants to talk to a lab service either spawns
// `ip netns exec NS client ...` or dials from inside the namespace. Dial does
// the latter: a socket keeps the namespace it was created in, so only the
// creation has to happen on a thread switched into the namespace; reads and
// writes then work from any goroutine.
//
// Dialer plugs into the database drivers:
//
//	mysqlCfg.DialFunc = netnsdial.Dialer("pbxlab-node1")
//	pgxCfg.DialFunc = netnsdial.Dialer("pbxlab-node1")
//
// Do runs any socket-creating function (an ICMP pinger, a UDP listener for
// SIP) inside a namespace. All of it needs CAP_SYS_ADMIN, in practice root.
package netnsdial
