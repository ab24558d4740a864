package eventhandler

import (
	"fmt"
	"io"
)

// syncCmd is `sync`: push the sync dirs to the peer when this node is
// master (issue 9). Not yet.
func syncCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pbxha-eventhandler sync: not yet")
	return ExitFailed
}
