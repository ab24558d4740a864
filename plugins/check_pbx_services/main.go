// Command check_pbx_services checks that the PBX's required services run on
// this node. The logic is in pbxha/lib/services.
package main

import (
	"pbxha/lib/plugin"
	"pbxha/lib/services"
)

func main() { plugin.Run(services.Spec()) }
