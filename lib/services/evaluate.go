package services

import (
	"fmt"
	"strconv"
	"strings"

	"pbxha/lib/plugin"
)

// maxPIDs bounds the PIDs a summary lists; a forking server can have
// hundreds.
const maxPIDs = 5

// ProcResult is one service's sub-result from its matching processes:
// "asterisk: 1 process (pid 1234)", "kamailio: 0 processes (expected 1:)".
// A count outside the range is CRITICAL: a required PBX service is down
// (or runs twice, which for Asterisk means two instances fighting over
// the same ports).
func ProcResult(s Service, pids []int) plugin.Result {
	n := len(pids)
	noun := "processes"
	if n == 1 {
		noun = "process"
	}
	var detail []string
	switch {
	case n == 1:
		detail = append(detail, "pid "+strconv.Itoa(pids[0]))
	case n > 1:
		shown := pids
		if len(shown) > maxPIDs {
			shown = shown[:maxPIDs]
		}
		ps := make([]string, len(shown))
		for i, p := range shown {
			ps[i] = strconv.Itoa(p)
		}
		list := strings.Join(ps, ", ")
		if len(pids) > maxPIDs {
			list += ", ..."
		}
		detail = append(detail, "pids "+list)
	}
	state := plugin.OK
	if s.Count.Alert(float64(n)) {
		state = plugin.Critical
		detail = append(detail, "expected "+s.Count.String())
	}
	sum := fmt.Sprintf("%s: %d %s", s.Name, n, noun)
	if len(detail) > 0 {
		sum += " (" + strings.Join(detail, "; ") + ")"
	}
	return plugin.Result{
		State:   state,
		Summary: sum,
		Perf:    []plugin.Perf{{Label: s.Name, Value: float64(n), Crit: s.Count.String(), Min: plugin.F(0)}},
	}
}

// UnitState is what systemd says of one unit.
type UnitState struct {
	Name        string // as asked for
	LoadState   string // loaded, not-found, masked, error, bad-setting
	ActiveState string // active, reloading, inactive, failed, activating, deactivating, ...
	SubState    string // running, exited, dead, auto-restart, ...
	MainPID     uint32 // 0 when none or unknown
}

// unitStateOf maps a unit's states to a service state:
// active is OK, a unit on its way up, down or through a reload is WARNING
// (it is not serving now, but systemd is on it), failed or inactive is
// CRITICAL. A service unit that is active but "exited" has no process
// left: Type=oneshot with RemainAfterExit, or a forking daemon whose PID
// systemd lost; a PBX daemon should not look like that, so WARNING. A state
// this code does not know is UNKNOWN rather than a guess.
func unitStateOf(u UnitState) plugin.State {
	if u.LoadState == "not-found" || u.LoadState == "masked" {
		return plugin.Critical
	}
	switch u.ActiveState {
	case "active":
		if u.SubState == "exited" && isService(u.Name) {
			return plugin.Warning
		}
		return plugin.OK
	case "activating", "reloading", "deactivating", "refreshing":
		return plugin.Warning
	case "failed", "inactive":
		return plugin.Critical
	}
	return plugin.Unknown
}

// UnitResult is one service's sub-result from its systemd unit:
// "asterisk: asterisk.service active/running (pid 1234)".
func UnitResult(s Service, u UnitState) plugin.Result {
	state := unitStateOf(u)
	var sum string
	switch u.LoadState {
	case "not-found":
		sum = fmt.Sprintf("%s: %s not found", s.Name, u.Name)
	case "masked":
		sum = fmt.Sprintf("%s: %s masked (%s)", s.Name, u.Name, states(u))
	default:
		sum = fmt.Sprintf("%s: %s %s", s.Name, u.Name, states(u))
		if u.LoadState != "" && u.LoadState != "loaded" {
			sum += ", load state " + plugin.Clean(u.LoadState, 40)
		}
	}
	switch {
	case state == plugin.OK && u.MainPID != 0:
		sum += fmt.Sprintf(" (pid %d)", u.MainPID)
	case state == plugin.Warning && u.ActiveState == "active":
		sum += " (no process left running)"
	}
	active := 0.0
	if u.ActiveState == "active" {
		active = 1
	}
	// A label of its own: the value is a state, not the process count
	// proc mode reports under the bare name, and the two must not share a
	// graph when a node falls back from one to the other.
	return plugin.Result{
		State:   state,
		Summary: sum,
		Perf:    []plugin.Perf{{Label: s.Name + " active", Value: active, Min: plugin.F(0), Max: plugin.F(1)}},
	}
}

func states(u UnitState) string {
	a, sub := plugin.Clean(u.ActiveState, 40), plugin.Clean(u.SubState, 40)
	if a == "" {
		a = "?"
	}
	if sub == "" {
		return a
	}
	return a + "/" + sub
}
