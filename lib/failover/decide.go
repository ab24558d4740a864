package failover

import (
	"fmt"
	"strings"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

// Trigger is what Icinga passed to the event handler.
type Trigger struct {
	Service   string
	State     string // OK, WARNING, CRITICAL, UNKNOWN
	StateType string // SOFT, HARD
	Attempt   int
	Host      string
	Output    string
}

// Action is what the handler does about a trigger.
type Action string

const (
	Ignore     Action = "ignore"  // logged, nothing done
	ActPromote Action = "promote" // this node becomes master
	ActDemote  Action = "demote"  // this node gives up master and hands over
)

// Decision is an action and why.
type Decision struct {
	Action Action
	Reason string
}

// Decide maps a trigger and this node's role to an action. Only CRITICAL
// + HARD of a failover-class service acts; which action follows from where
// the check ran: on the slave it promotes, on the master it hands over.
// A standby node never takes the VIP by itself, and recovery never fails
// back.
func Decide(cfg *config.Config, t Trigger, role string) Decision {
	ign := func(format string, args ...any) Decision {
		return Decision{Action: Ignore, Reason: fmt.Sprintf(format, args...)}
	}
	if !cfg.IsFailoverService(t.Service) {
		return ign("service %q is not failover class (failover_services: %s)", t.Service, strings.Join(cfg.FailoverServices, ", "))
	}
	state, typ := strings.ToUpper(t.State), strings.ToUpper(t.StateType)
	if state != "CRITICAL" {
		if state == "OK" {
			return ign("%s is OK: recovery never fails back", t.Service)
		}
		return ign("%s is %s, only CRITICAL acts", t.Service, state)
	}
	if typ != "HARD" {
		return ign("%s is CRITICAL but %s (attempt %d): waiting for HARD", t.Service, typ, t.Attempt)
	}
	switch role {
	case cluster.Slave:
		return Decision{Action: ActPromote, Reason: fmt.Sprintf("%s CRITICAL HARD on the slave", t.Service)}
	case cluster.Master:
		if SlaveSide(t.Service) {
			return ign("%s watches the master from the slave and this node is already master: work done", t.Service)
		}
		return Decision{Action: ActDemote, Reason: fmt.Sprintf("%s CRITICAL HARD on the master", t.Service)}
	case cluster.Standby:
		return ign("this node is standby: it never takes the VIP by itself (rejoin first)")
	}
	return ign("this node's role is unknown (%q): doing nothing", role)
}

// SlaveSide reports whether a service is one of the checks that watch the
// master from the slave (check_pbx_master_alive, check_pbx_net_failover).
// Their CRITICAL on a node that is already master means a promote has been
// done (a repeated or late event), never that the master should hand over.
func SlaveSide(service string) bool {
	return strings.Contains(service, "master_alive") || strings.Contains(service, "net_failover")
}
