// Command check_pbx_ami checks Asterisk's Manager Interface on the master
// of a pbxha cluster (notify class): connect, greeting, login, Ping,
// CoreStatus, logoff. See lib/ami for the session and its states.
package main

import (
	"pbxha/lib/ami"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(ami.Spec()) }
