// Command pbxha-notify is the NotificationCommand Icinga runs to mail a
// problem, recovery or acknowledgement. See package notify.
package main

import (
	"os"

	"pbxha/eventhandler/notify"
)

func main() { os.Exit(notify.Main(os.Args[1:], os.Stdout, os.Stderr)) }
