// Command check_pbx_sip sends one SIP OPTIONS request to the PBX (UDP, TCP
// or TLS) and judges its final response code and round-trip time. It is a
// notify-class check of a pbxha cluster and applies to the master. See
// lib/sip for the probe and its states.
package main

import (
	"pbxha/lib/plugin"
	"pbxha/lib/sip"
)

func main() { plugin.Run(sip.Spec()) }
