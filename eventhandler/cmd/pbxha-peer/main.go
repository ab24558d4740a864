// Command pbxha-peer is the remote end of pbxha's peer access: sshd runs
// it for the cluster key (authorized_keys pins the key to it), it reads the
// client's command from $SSH_ORIGINAL_COMMAND, checks it against a fixed
// grammar and answers with one JSON object. See lib/peer. Its `promote`
// runs the event handler's promote (the other half of a hand-over).
package main

import (
	"os"

	"pbxha/eventhandler"
	"pbxha/lib/peer"
)

func main() {
	peer.PromoteFunc = eventhandler.PeerPromote
	peer.DemoteFunc = eventhandler.PeerDemote
	peer.ServicesFunc = eventhandler.PeerServices
	os.Exit(peer.Main(os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}
