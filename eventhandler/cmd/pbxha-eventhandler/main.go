// Command pbxha-eventhandler is the event handler Icinga runs for the
// failover-class checks. See package eventhandler.
package main

import (
	"os"

	"pbxha/eventhandler"
)

func main() { os.Exit(eventhandler.Main(os.Args[1:], os.Stdout, os.Stderr)) }
