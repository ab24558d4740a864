// Package plugin is the one way a pbxha check reports and exits.
//
// A check is a Spec: its flags, an optional validation, and a Check function
// that returns a Result. Run parses the common flags (-h, -V, -v, -t,
// --config, --role), enforces the deadline, recovers panics, prints the
// result in the monitoring-plugins format and exits. Nothing below a
// plugin's main prints or exits.
//
// Output:
//
//	NAME STATE - summary | 'label'=value[UOM];warn;crit;min;max ...
//	\_ [STATE] sub-result summary
//	long output ...
//
// The worst state wins, ranked CRITICAL > UNKNOWN > WARNING > OK (the order
// Icinga Web and NETWAYS/go-check sort by): a part that could not be checked
// outranks a warning elsewhere, and a critical part always shows.
//
// go-nagios supplies the state labels and exit codes; its output layout
// (sections headed **ERRORS**, **THRESHOLDS**, an automatic "time" metric)
// and its os.Exit inside ReturnCheckResults do not fit checks that must also
// be run in-process by tests, so printing and exiting live here.
//
// This package knows no protocol and no cluster: role gating is a hook
// (Spec.Gate) that lib/cluster fills.
package plugin
