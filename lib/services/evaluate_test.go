package services

import (
	"testing"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func perfText(r plugin.Result) string {
	var s string
	for i, p := range r.AllPerf() {
		if i > 0 {
			s += " "
		}
		s += p.String()
	}
	return s
}

func TestProcResult(t *testing.T) {
	tests := []struct {
		name  string
		count string
		pids  []int
		state plugin.State
		sum   string
		perf  string
	}{
		{"one", "1:", []int{1234}, plugin.OK, "asterisk: 1 process (pid 1234)", "asterisk=1;;1:;0"},
		{"none is a service down", "1:", nil, plugin.Critical, "asterisk: 0 processes (expected 1:)", "asterisk=0;;1:;0"},
		{"two where one is wanted", "1:1", []int{10, 11}, plugin.Critical, "asterisk: 2 processes (pids 10, 11; expected 1:1)", "asterisk=2;;1:1;0"},
		// "1" is a Nagios range, 0:1: zero is within it.
		{"'1' allows none", "1", nil, plugin.OK, "asterisk: 0 processes", "asterisk=0;;1;0"},
		{"'1' refuses two", "1", []int{10, 11}, plugin.Critical, "asterisk: 2 processes (pids 10, 11; expected 1)", "asterisk=2;;1;0"},
		{"many pids are cut", "2:", []int{1, 2, 3, 4, 5, 6, 7}, plugin.OK, "asterisk: 7 processes (pids 1, 2, 3, 4, 5, ...)", "asterisk=7;;2:;0"},
		{"must not run", "0", []int{99}, plugin.Critical, "asterisk: 1 process (pid 99; expected 0)", "asterisk=1;;0;0"},
		{"inverted range", "@2:3", []int{1, 2}, plugin.Critical, "asterisk: 2 processes (pids 1, 2; expected @2:3)", "asterisk=2;;@2:3;0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Service{Name: "asterisk", Process: "asterisk", Count: threshold.MustParse(tt.count)}
			r := ProcResult(s, tt.pids)
			if r.State != tt.state || r.Summary != tt.sum || perfText(r) != tt.perf {
				t.Errorf("got %v %q %q\nwant %v %q %q", r.State, r.Summary, perfText(r), tt.state, tt.sum, tt.perf)
			}
		})
	}
}

func TestUnitResult(t *testing.T) {
	tests := []struct {
		u     UnitState
		state plugin.State
		sum   string
		perf  string
	}{
		{UnitState{"asterisk.service", "loaded", "active", "running", 1234}, plugin.OK, "asterisk: asterisk.service active/running (pid 1234)", "'asterisk active'=1;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "active", "running", 0}, plugin.OK, "asterisk: asterisk.service active/running", "'asterisk active'=1;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "reloading", "reload", 1234}, plugin.Warning, "asterisk: asterisk.service reloading/reload", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "activating", "start", 0}, plugin.Warning, "asterisk: asterisk.service activating/start", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "activating", "auto-restart", 0}, plugin.Warning, "asterisk: asterisk.service activating/auto-restart", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "deactivating", "stop-sigterm", 0}, plugin.Warning, "asterisk: asterisk.service deactivating/stop-sigterm", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "failed", "failed", 0}, plugin.Critical, "asterisk: asterisk.service failed/failed", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "inactive", "dead", 0}, plugin.Critical, "asterisk: asterisk.service inactive/dead", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "not-found", "inactive", "dead", 0}, plugin.Critical, "asterisk: asterisk.service not found", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "masked", "inactive", "dead", 0}, plugin.Critical, "asterisk: asterisk.service masked (inactive/dead)", "'asterisk active'=0;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "active", "exited", 0}, plugin.Warning, "asterisk: asterisk.service active/exited (no process left running)", "'asterisk active'=1;;;0;1"},
		// A socket or target has no process to lose.
		{UnitState{"asterisk.socket", "loaded", "active", "listening", 0}, plugin.OK, "asterisk: asterisk.socket active/listening", "'asterisk active'=1;;;0;1"},
		{UnitState{"pbx.target", "loaded", "active", "active", 0}, plugin.OK, "asterisk: pbx.target active/active", "'asterisk active'=1;;;0;1"},
		{UnitState{"asterisk.service", "error", "active", "running", 7}, plugin.OK, "asterisk: asterisk.service active/running, load state error (pid 7)", "'asterisk active'=1;;;0;1"},
		{UnitState{"asterisk.service", "loaded", "maintenance\n|x", "", 0}, plugin.Unknown, "asterisk: asterisk.service maintenance /x", "'asterisk active'=0;;;0;1"},
	}
	for _, tt := range tests {
		s := Service{Name: "asterisk", Unit: tt.u.Name}
		r := UnitResult(s, tt.u)
		if r.State != tt.state || r.Summary != tt.sum || perfText(r) != tt.perf {
			t.Errorf("%+v:\ngot  %v %q %q\nwant %v %q %q", tt.u, r.State, r.Summary, perfText(r), tt.state, tt.sum, tt.perf)
		}
	}
}
