package plugin

import (
	"fmt"
	"strings"

	nagios "github.com/atc0005/go-nagios"
)

// State is a service state and, as an int, its exit code.
type State int

// The four states, equal to their exit codes.
const (
	OK       State = State(nagios.StateOKExitCode)
	Warning  State = State(nagios.StateWARNINGExitCode)
	Critical State = State(nagios.StateCRITICALExitCode)
	Unknown  State = State(nagios.StateUNKNOWNExitCode)
)

func (s State) String() string {
	switch s {
	case OK:
		return nagios.StateOKLabel
	case Warning:
		return nagios.StateWARNINGLabel
	case Critical:
		return nagios.StateCRITICALLabel
	}
	return nagios.StateUNKNOWNLabel
}

// rank orders states by severity: OK < WARNING < UNKNOWN < CRITICAL.
func (s State) rank() int {
	switch s {
	case OK:
		return 0
	case Warning:
		return 1
	case Critical:
		return 3
	}
	return 2
}

// Worst returns the most severe of the states (OK for none).
func Worst(states ...State) State {
	w := OK
	for _, s := range states {
		if s.rank() > w.rank() {
			w = s
		}
	}
	return w
}

// ParseState reads a state name (ok, warning, critical, unknown; any case)
// or its number.
func ParseState(s string) (State, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "OK", "0":
		return OK, nil
	case "WARNING", "WARN", "1":
		return Warning, nil
	case "CRITICAL", "CRIT", "2":
		return Critical, nil
	case "UNKNOWN", "3":
		return Unknown, nil
	}
	return Unknown, fmt.Errorf("%q is not a state (ok, warning, critical, unknown)", s)
}
