package ami

import (
	"fmt"
	"strings"
)

// Fault makes the server misbehave the way a sick Asterisk does, so the
// AMI check can be shown to report each case and to stay within its
// timeout. Change it at any time with Server.SetFault.
type Fault int

const (
	// FaultNone: speak the protocol correctly.
	FaultNone Fault = iota
	// FaultRefuseLogin: every Login fails with "Authentication failed"
	// (after the usual delay) and the connection is closed, as for a wrong
	// secret. Checked at each Login.
	FaultRefuseLogin
	// FaultNoGreeting: accept the connection and never send a byte; the
	// input is read and thrown away. Checked when a connection arrives.
	FaultNoGreeting
	// FaultStallMidResponse: greeting and Login work; the first response
	// after login is cut in half and the session then goes silent without
	// closing. Checked at each response after login.
	FaultStallMidResponse
	// FaultGarbage: send random bytes that are not AMI instead of the
	// greeting, then stay silent. Checked when a connection arrives.
	FaultGarbage
)

var faultNames = [...]string{
	FaultNone:             "none",
	FaultRefuseLogin:      "refuse-login",
	FaultNoGreeting:       "no-greeting",
	FaultStallMidResponse: "stall-mid-response",
	FaultGarbage:          "garbage",
}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ParseFault reads a fault name as String writes it ("refuse-login"), for
// command lines such as `pbxlab fault`.
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if strings.EqualFold(s, n) {
			return Fault(i), nil
		}
	}
	return FaultNone, fmt.Errorf("unknown AMI fault %q (want one of %s)", s, strings.Join(faultNames[:], ", "))
}
