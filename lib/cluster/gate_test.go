package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
)

func writeConfig(t *testing.T, stateFile string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(p, []byte("state_file = \""+stateFile+"\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func spec(role string) plugin.Spec {
	return plugin.Spec{
		Name: "PBX_TEST", Binary: "check_pbx_test", DefaultRole: role, Gate: Gate,
		Check: func(context.Context, *plugin.Env) plugin.Result { return plugin.Resultf(plugin.Warning, "ran") },
	}
}

func TestGate(t *testing.T) {
	dir := t.TempDir()
	sf := filepath.Join(dir, "state.json")
	if err := WriteState(sf, State{Node: "node2", Role: Slave, Epoch: 3, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, sf)
	cases := []struct {
		name     string
		def      string
		args     []string
		code     int
		firstLin string
	}{
		{"skips on other role", plugin.RoleMaster, nil, 0, "PBX_TEST OK - skipped: node is slave (applies to master)"},
		{"runs on own role", plugin.RoleSlave, nil, 1, "PBX_TEST WARNING - ran"},
		{"--role any runs", plugin.RoleMaster, []string{"--role", "any"}, 1, "PBX_TEST WARNING - ran"},
		{"--role overrides default", plugin.RoleMaster, []string{"--role", "slave"}, 1, "PBX_TEST WARNING - ran"},
		{"bad role is usage", plugin.RoleMaster, []string{"--role", "boss"}, 3, "PBX_TEST UNKNOWN - usage: invalid argument \"boss\" for \"--role\" flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := plugin.Execute(spec(tc.def), append([]string{"--config", cfg}, tc.args...), &out)
			first := strings.SplitN(out.String(), "\n", 2)[0]
			if code != tc.code || !strings.HasPrefix(first, tc.firstLin) {
				t.Fatalf("got %d %q, want %d %q", code, first, tc.code, tc.firstLin)
			}
		})
	}
}

func TestGateWithoutStateFile(t *testing.T) {
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "missing.json"))
	var out bytes.Buffer
	code := plugin.Execute(spec(plugin.RoleMaster), []string{"--config", cfg}, &out)
	if code != 3 || !strings.Contains(out.String(), "no state file") || !strings.Contains(out.String(), "--role any") {
		t.Fatalf("got %d %q", code, out.String())
	}
}

func TestStateRoundTripAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	want := State{Node: "node1", Role: Master, Epoch: 7, Since: time.Unix(1700000000, 0).UTC(), Reason: "initial"}
	if err := WriteState(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(p)
	if err != nil || got != want {
		t.Fatalf("got %+v %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	os.WriteFile(p, []byte("{\"role\":\"boss\"}"), 0o644)
	if _, err := ReadState(p); err == nil || !strings.Contains(err.Error(), `role "boss"`) {
		t.Fatalf("bad role: %v", err)
	}
	os.WriteFile(p, []byte("{"), 0o644)
	if _, err := ReadState(p); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("bad json: %v", err)
	}
}
