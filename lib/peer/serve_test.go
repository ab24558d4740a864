package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/probe"
)

// nodeConfig is node2's config with its state file in dir.
func nodeConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	text := `node = "node2"
state_file = "` + filepath.Join(dir, "state.json") + `"
[vip]
address = "192.0.2.10/24"
interface = "tel0"
[[nodes]]
name = "node1"
cluster_ip = "198.51.100.1"
[[nodes]]
name = "node2"
cluster_ip = "198.51.100.2"
`
	path := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func serve(t *testing.T, s *Server, line string) (int, map[string]any, string) {
	t.Helper()
	var b strings.Builder
	code := s.ServeLine(context.Background(), line, &b)
	out := b.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("%q: output is not one line: %q", line, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%q: output is not one JSON object: %q", line, out)
	}
	return code, m, out
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := cluster.WriteState(filepath.Join(dir, "state.json"), cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 4, Since: since, Reason: "rejoin"}); err != nil {
		t.Fatal(err)
	}
	var gotOpts probe.Options
	var gotTargets []netip.Addr
	s := &Server{
		Config: nodeConfig(t, dir),
		Now:    func() time.Time { return time.Unix(1700000000, 123456789) },
		VIPBound: func(iface string, p netip.Prefix) (bool, error) {
			if iface != "tel0" || p.String() != "192.0.2.10/24" {
				t.Errorf("VIPBound(%q, %s)", iface, p)
			}
			return false, nil
		},
		Probe: func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("probe without a deadline")
			}
			gotOpts, gotTargets = o, targets
			var rs []probe.Result
			for i, a := range targets {
				rs = append(rs, probe.Result{Target: a, Sent: 3, Received: 3 - 3*i, RTT: 1500 * time.Microsecond, Reachable: i == 0, Loss: float64(100 * i), Err: map[bool]string{true: "timed out"}[i > 0]})
			}
			return rs
		},
	}
	for _, tc := range []struct {
		line string
		code int
		want string
	}{
		{"time", 0, `{"unix_nano":1700000000123456789}`},
		{"state", 0, `{"node":"node2","state":{"node":"node2","role":"slave","epoch":4,"since":"2025-03-01T12:00:00Z","reason":"rejoin"},"vip":"192.0.2.10/24","vip_interface":"tel0","vip_bound":false}`},
		{"probe tcp 250 2 50 22,5060 192.0.2.1 192.0.2.99", 0,
			`{"results":[{"target":"192.0.2.1","sent":3,"received":3,"rtt_ns":1500000,"loss":0,"reachable":true},` +
				`{"target":"192.0.2.99","sent":3,"received":0,"rtt_ns":1500000,"loss":100,"reachable":false,"err":"timed out"}]}`},
		{"reboot", 2, `{"error":"invalid command: unknown command \"reboot\" (known: demote, demote-below, maintenance-off, maintenance-on, manifest, probe, promote, state, time, version)"}`},
		{"state; id", 2, `{"error":"invalid command: byte ';' is not allowed (only a-z, 0-9, '.', ':', ',', '-')"}`},
		{"", 2, `{"error":"invalid command: empty command"}`},
	} {
		code, _, out := serve(t, s, tc.line)
		if code != tc.code || strings.TrimSpace(out) != tc.want {
			t.Errorf("%q: exit %d %s\nwant exit %d %s", tc.line, code, out, tc.code, tc.want)
		}
	}
	want := probe.Options{Method: probe.TCP, Timeout: 250 * time.Millisecond, Count: 2, Interval: 50 * time.Millisecond, Ports: []int{22, 5060}}
	if !reflect.DeepEqual(gotOpts, want) || len(gotTargets) != 2 {
		t.Errorf("probe got %+v %v, want %+v", gotOpts, gotTargets, want)
	}

	code, m, _ := serve(t, s, "version")
	if code != 0 || m["version"] == "" || !reflect.DeepEqual(m["commands"], []any{"demote", "demote-below", "maintenance-off", "maintenance-on", "manifest", "probe", "promote", "state", "time", "version"}) {
		t.Errorf("version: %d %v", code, m)
	}
}

// time says Ready on stderr and reads the clock when the client's line
// arrives (or stdin ends), not before.
func TestServeTimeWaitsForTheLine(t *testing.T) {
	var readAt time.Time
	s := &Server{Now: func() time.Time { readAt = time.Now(); return readAt }}
	pr, pw := io.Pipe()
	var out, errb strings.Builder
	done := make(chan int)
	go func() { done <- s.ServeIO(context.Background(), []string{"time"}, IO{In: pr, Out: &out, Err: &errb}) }()
	time.Sleep(150 * time.Millisecond)
	sent := time.Now()
	pw.Write([]byte("\n"))
	if code := <-done; code != 0 || !strings.HasPrefix(out.String(), `{"unix_nano":`) || errb.String() != Ready+"\n" {
		t.Fatalf("exit %d %q, stderr %q", code, out.String(), errb.String())
	}
	if readAt.Before(sent) {
		t.Fatalf("clock read %v before the line came", sent.Sub(readAt))
	}
	// Empty stdin (a local run with </dev/null): at once.
	start := time.Now()
	if code, _, _ := serve(t, s, "time"); code != 0 || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("time with empty stdin: exit %d after %v", code, time.Since(start))
	}
}

func TestServeStateFailures(t *testing.T) {
	dir := t.TempDir()
	s := &Server{
		Config: nodeConfig(t, dir),
		VIPBound: func(string, netip.Prefix) (bool, error) {
			return false, errors.New(`interface "tel0" not found on this node`)
		},
	}
	// No state file: an error, but what is known about the VIP comes along.
	code, m, out := serve(t, s, "state")
	if code != 1 || !strings.Contains(m["error"].(string), "no state file "+filepath.Join(dir, "state.json")) ||
		m["node"] != "node2" || m["vip_error"] != `interface "tel0" not found on this node` || m["vip_bound"] != nil {
		t.Errorf("state without a state file: %d %s", code, out)
	}

	// A config that loads but does not say which node this is.
	s = &Server{LoadConfig: func() (*config.Config, error) {
		c := nodeConfig(t, dir)
		c.Node = "node9"
		return c, nil
	}}
	if code, m, _ := serve(t, s, "state"); code != 1 || !strings.Contains(m["error"].(string), "cannot tell which node this is") {
		t.Errorf("unknown node: %d %v", code, m)
	}

	// A config that does not load fails the commands that need it only.
	s = &Server{LoadConfig: func() (*config.Config, error) { return nil, errors.New("reading config: permission denied") }}
	if code, m, _ := serve(t, s, "state"); code != 1 || m["error"] != "reading config: permission denied" {
		t.Errorf("bad config, state: %d %v", code, m)
	}
	if code, _, _ := serve(t, s, "time"); code != 0 {
		t.Errorf("bad config, time: exit %d", code)
	}
}

func TestMain_(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(t, dir)
	if err := cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string // in the output
	}{
		{"argv words", []string{"--config", cfg.Path(), "state"}, nil, 0, `"role":"master"`},
		{"SSH_ORIGINAL_COMMAND", []string{"--config", cfg.Path()}, map[string]string{"SSH_ORIGINAL_COMMAND": "time"}, 0, `{"unix_nano":`},
		{"SSH_ORIGINAL_COMMAND refused", []string{"--config", cfg.Path()}, map[string]string{"SSH_ORIGINAL_COMMAND": "sh -c id"}, 2, `"error":"invalid command: unknown command \"sh\"`},
		{"a shell session (no command)", []string{"--config", cfg.Path()}, nil, 2, `"error":"invalid command: empty command"`},
		{"empty SSH_ORIGINAL_COMMAND", []string{"--config", cfg.Path()}, map[string]string{"SSH_ORIGINAL_COMMAND": ""}, 2, `empty command`},
		{"both", []string{"--config", cfg.Path(), "state"}, map[string]string{"SSH_ORIGINAL_COMMAND": "time"}, 2, `both $SSH_ORIGINAL_COMMAND and arguments (state) given`},
		{"words are not flags", []string{"--config", cfg.Path(), "probe", "--help"}, nil, 2, `METHOD: \"--help\" is not one of`},
		{"bad flag", []string{"--shell"}, nil, 2, `"error":"usage: unknown flag: --shell"`},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.toml"), "state"}, nil, 1, `"error":"reading config: open `},
		{"help", []string{"-h"}, nil, 0, "probe METHOD TIMEOUT_MS COUNT INTERVAL_MS PORTS ADDR..."},
		{"read-only key: demote refused", []string{"--read-only", "--config", cfg.Path()}, map[string]string{"SSH_ORIGINAL_COMMAND": "demote"}, 2, `read-only (pbxha-peer --read-only): demote changes the node`},
		{"read-only key: state answered", []string{"--read-only", "--config", cfg.Path()}, map[string]string{"SSH_ORIGINAL_COMMAND": "state"}, 0, `"role":"master"`},
	} {
		var b strings.Builder
		code := Main(tc.args, env(tc.env), strings.NewReader(""), &b, io.Discard)
		if code != tc.code || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: exit %d %q; want exit %d containing %q", tc.name, code, b.String(), tc.code, tc.want)
		}
	}
}

// demote-below demotes only a master below the epoch it is given; anything
// else is answered with the node's role and epoch, and nothing changes.
func TestServeDemoteBelow(t *testing.T) {
	cfg := nodeConfig(t, t.TempDir())
	s := &Server{Config: cfg}
	var demoted int
	old := DemoteFunc
	DemoteFunc = func(ctx context.Context, cfg *config.Config) (*DemoteReply, error) {
		demoted++
		return &DemoteReply{Node: cfg.Self().Name, Role: cluster.Standby, Epoch: 1, VIPReleased: true}, nil
	}
	t.Cleanup(func() { DemoteFunc = old })
	for _, tc := range []struct {
		role    string
		epoch   uint64
		line    string
		demote  bool
		skipped string
	}{
		{cluster.Master, 1, "demote-below 2", true, ""},
		{cluster.Master, 2, "demote-below 2", false, "node2 is master at epoch 2, not a master below epoch 2: nothing to demote"},
		{cluster.Standby, 1, "demote-below 2", false, "node2 is standby at epoch 1"},
		{cluster.Slave, 1, "demote-below 5", false, "node2 is slave at epoch 1"},
	} {
		if err := cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: tc.role, Epoch: tc.epoch}); err != nil {
			t.Fatal(err)
		}
		demoted = 0
		code, m, out := serve(t, s, tc.line)
		if code != 0 || (demoted == 1) != tc.demote || !strings.Contains(fmt.Sprint(m["skipped"]), tc.skipped) || (tc.skipped == "" && m["skipped"] != nil) {
			t.Errorf("%s at epoch %d, %q: exit %d, demoted %d, %s", tc.role, tc.epoch, tc.line, code, demoted, out)
		}
	}
	for _, bad := range []string{"demote-below", "demote-below 0", "demote-below -1", "demote-below 1000000001", "demote-below 02"} {
		if code, _, out := serve(t, s, bad); code != 2 {
			t.Errorf("%q: exit %d %s; want 2 (invalid)", bad, code, out)
		}
	}
}

// A read-only server (the checks' key) refuses exactly the commands that
// change the node, before running anything.
func TestServeReadOnly(t *testing.T) {
	cfg := nodeConfig(t, t.TempDir())
	if err := cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	old := DemoteFunc
	DemoteFunc = func(context.Context, *config.Config) (*DemoteReply, error) {
		t.Error("a read-only server ran demote")
		return nil, errors.New("ran")
	}
	t.Cleanup(func() { DemoteFunc = old })
	s := &Server{Config: cfg, ReadOnly: true}
	for _, line := range []string{"demote", "demote-below 3", "promote handover", "maintenance-on 60", "maintenance-off"} {
		code, m, out := serve(t, s, line)
		if code != ExitUsage || !strings.Contains(fmt.Sprint(m["error"]), "read-only") {
			t.Errorf("%q on a read-only server: exit %d %s", line, code, out)
		}
	}
	for _, line := range []string{"state", "version", "time"} {
		if code, _, out := serve(t, s, line); code != 0 {
			t.Errorf("%q on a read-only server: exit %d %s", line, code, out)
		}
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Master {
		t.Errorf("state changed: %+v", st)
	}
	if _, exists, _, _ := cluster.ReadMaintenance(cfg.StateFile, time.Now()); exists {
		t.Error("maintenance switched on by a read-only server")
	}
}
