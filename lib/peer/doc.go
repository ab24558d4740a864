// Package peer is how one pbxha node asks the other something: SSH over
// the cluster network (golang.org/x/crypto/ssh) with the cluster key, the
// peer's host key checked strictly against known_hosts, and on the far end
// pbxha-peer, a dispatcher of a fixed set of commands.
//
// # Security boundary
//
// Each node's authorized_keys MUST pin the cluster key to pbxha-peer:
//
//	command="/usr/sbin/pbxha-peer --config /etc/pbxha/cluster.toml",restrict ssh-ed25519 AAAA... pbxha-cluster
//
// sshd then runs pbxha-peer whatever the client asks, with the client's
// command line in $SSH_ORIGINAL_COMMAND, and `restrict` forbids ptys and
// forwarding: the cluster key can do what the command table allows and
// nothing else. The checks run as nagios and get a key of their own
// (ssh.check_key_file, Dial with ReadOnly), pinned to the read-only mode,
// which refuses demote, demote-below, promote and maintenance-on/-off:
//
//	command="/usr/sbin/pbxha-peer --read-only --config /etc/pbxha/cluster.toml",restrict ssh-ed25519 AAAA... pbxha-checks
//
// The client sends only "SUBCOMMAND ARG..." (no binary path,
// so cluster.toml's ssh.command is not sent; it is the path installers and
// the lab write into authorized_keys).
//
// # Grammar
//
// A command line is words separated by single spaces, each of the bytes
// a-z 0-9 . : , - only, at most MaxWords words and MaxLine bytes. The
// first word names a subcommand; each further word is typed by position
// (a bounded decimal, an IP address, one of fixed words, a port list) and
// accepted only in its canonical spelling, so a parsed request re-encodes
// to exactly its words. Nothing is ever given to a shell. Today:
//
//	version
//	state
//	time
//	probe METHOD TIMEOUT_MS COUNT INTERVAL_MS PORTS ADDR...
//	demote
//	demote-below EPOCH
//	promote REASON
//	maintenance-on SECONDS
//	maintenance-off
//	manifest INDEX CHECKSUM SINCE_S
//
// METHOD is icmp, tcp, both or banner (lib/probe); PORTS is "-" or up to 8
// ports joined by commas ("22,5060"); 1 to 32 ADDRs. `demote` releases
// the VIP, stops the PBX services and writes role standby; `demote-below`
// does so only while this node is a master below EPOCH (a stale master),
// and otherwise answers with its role and epoch and changes nothing (the fencing
// step of the other node's promote: the VIP goes first, as that node takes
// it, then the databases go read-only or stop). `promote` (REASON handover or switchover) runs this
// node's promote for the peer that has just demoted itself: the second
// half of a hand-over after a failure on the master, or of a planned
// switchover; it may run up to PromoteTime. `maintenance-on` and
// `maintenance-off` set the maintenance switch on this node too, so
// neither node's handler acts during planned work. `manifest` streams the listing of the
// INDEXth of this node's own [sync] dirs (never a path from the network)
// for check_pbx_fs_sync, then the JSON reply. Adding a subcommand
// is one entry in the table in serve.go and its handler.
//
// `time` writes "ready" on stderr, waits (at most 5 s) for a line or the
// end of stdin, and only then reads the clock. The client sends that line
// once it sees "ready" and times just that exchange: starting pbxha-peer
// (sshd, a shell, the Go runtime; hundreds of milliseconds on a loaded
// node) would otherwise count as network delay and skew the result by
// half of it. Run by hand with stdin from /dev/null it answers at once.
//
// # Replies
//
// One JSON object on stdout. A failed command's object has "error" and
// the exit code is 1; a command the grammar refuses exits 2. The client
// treats everything in a reply as untrusted text (plugin.Clean).
//
// # Deadlines
//
// Dial bounds TCP connect, SSH handshake and login together by
// ssh.connect_timeout and by ctx. Each command is bounded by its ctx: when
// it ends the connection is closed, which unblocks any read. The remote
// end bounds every command by MaxCommandTime.
//
// Package peertest runs the remote end in-process behind a real SSH
// server, for tests of the checks that use this package.
package peer
