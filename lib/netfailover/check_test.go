package netfailover

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

const testConfig = `node = "node2"
state_file = "STATE"
[telephony]
targets = TARGETS
[[nodes]]
name = "node1"
telephony_ip = "192.0.2.11"
cluster_ip = "198.51.100.1"
[[nodes]]
name = "node2"
telephony_ip = "192.0.2.12"
cluster_ip = "198.51.100.2"
`

func fixture(t *testing.T, targets, role string) string {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	cfg := filepath.Join(dir, "cluster.toml")
	text := strings.NewReplacer("STATE", state, "TARGETS", targets).Replace(testConfig)
	if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WriteState(state, cluster.State{Node: "node2", Role: role, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakes answers for both sides: down lists targets a side cannot reach.
type fakes struct {
	mu          sync.Mutex
	masterDown  map[netip.Addr]bool
	slaveDown   map[netip.Addr]bool
	masterErr   error
	masterHang  bool
	gotTargets  [2][]netip.Addr // local, master
	gotOptions  [2]probe.Options
	masterCalls int
}

func results(targets []netip.Addr, down map[netip.Addr]bool) []probe.Result {
	out := make([]probe.Result, len(targets))
	for i, t := range targets {
		out[i] = probe.Result{Target: t, Sent: 3, Received: 3, RTT: time.Millisecond, Reachable: true}
		if down[t] {
			out[i] = probe.Result{Target: t, Sent: 3, Loss: 100}
		}
	}
	return out
}

func (f *fakes) config() *checkConfig {
	c := newConfig()
	c.probeLocal = func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.gotTargets[0], f.gotOptions[0] = targets, o
		return results(targets, f.slaveDown)
	}
	c.probeMaster = func(ctx context.Context, cfg *config.Config, targets []netip.Addr, o probe.Options) ([]probe.Result, error) {
		f.mu.Lock()
		f.gotTargets[1], f.gotOptions[1] = targets, o
		f.masterCalls++
		f.mu.Unlock()
		if f.masterHang {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if f.masterErr != nil {
			return nil, f.masterErr
		}
		return results(targets, f.masterDown), nil
	}
	return c
}

func run(t *testing.T, c *checkConfig, args ...string) (int, string, string) {
	t.Helper()
	var out bytes.Buffer
	code := plugin.Execute(c.spec(), args, &out)
	first, _, _ := strings.Cut(out.String(), "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, out.String()
}

var (
	gwDown = map[netip.Addr]bool{gw: true}
)

func TestCheck(t *testing.T) {
	cfg := fixture(t, `["192.0.2.1"]`, cluster.Slave)
	for _, tc := range []struct {
		name  string
		f     *fakes
		args  []string
		code  int
		first string
	}{
		{"healthy", &fakes{}, nil, 0,
			"PBX_NET_FAILOVER OK - master node1 and slave node2 reach 192.0.2.1 | master_reachable=1;;;0;1 master_rtt=0.001s;;;0 slave_reachable=1;;;0;1 slave_rtt=0.001s;;;0"},
		{"master cut off", &fakes{masterDown: gwDown}, nil, 2,
			"PBX_NET_FAILOVER CRITICAL - master node1 reaches 0/1 telephony targets, slave node2 reaches 1/1: the master lost the telephony network"},
		{"network down", &fakes{masterDown: gwDown, slaveDown: gwDown}, nil, 1,
			"PBX_NET_FAILOVER WARNING - telephony network down for both nodes: a failover would not help"},
		{"master refuses SSH", &fakes{masterErr: errors.New("ssh to node1 (198.51.100.1:22): dial: connection refused")}, nil, 3,
			"PBX_NET_FAILOVER UNKNOWN - cannot ask master node1 to probe the telephony targets: ssh to node1 (198.51.100.1:22): dial: connection refused"},
		// A hung master is UNKNOWN within -t, never the timeout's CRITICAL.
		{"master hangs", &fakes{masterHang: true}, []string{"-t", "1"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - cannot ask master node1 to probe the telephony targets: no answer within 0.8s"},
		{"-H replaces the config's targets", &fakes{masterDown: gwDown}, []string{"-H", "192.0.2.2", "-H", "192.0.2.3"}, 0,
			"PBX_NET_FAILOVER OK - master node1 reaches 2/2, slave node2 2/2 telephony targets"},
		{"--min-targets 2 of 2", &fakes{masterDown: map[netip.Addr]bool{trunk: true}}, []string{"-H", "192.0.2.1", "-H", "192.0.2.2", "--min-targets", "2"}, 2,
			"PBX_NET_FAILOVER CRITICAL - master node1 reaches 1/2 telephony targets, slave node2 reaches 2/2"},
		{"bad -H", &fakes{}, []string{"-H", "gw.example.net"}, 3,
			`PBX_NET_FAILOVER UNKNOWN - usage: flag -H/--host: "gw.example.net" is not an IP address`},
		{"--min-targets above -H", &fakes{}, []string{"-H", "192.0.2.1", "--min-targets", "2"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - usage: flag --min-targets: 2 is more than the 1 target(s) given with -H"},
		{"--min-targets above the config's", &fakes{}, []string{"--min-targets", "2"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - usage: flag --min-targets: 2 is more than the 1 target(s) in "},
		{"--min-targets 0", &fakes{}, []string{"--min-targets", "0"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - usage: flag --min-targets: 0 is less than 1"},
		{"tcp without a port", &fakes{}, []string{"--method", "tcp"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - usage: flag --port: --method tcp needs at least one port"},
		{"probing longer than half of -t", &fakes{}, []string{"-t", "1", "--count", "5", "--interval", "200ms"}, 3,
			"PBX_NET_FAILOVER UNKNOWN - usage: flags --count/--interval/--probe-timeout: probing may take 1s, more than half of -t 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, first, out := run(t, tc.f.config(), append([]string{"--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %d %q\nwant %d %q\n%s", code, first, tc.code, tc.first, out)
			}
		})
	}
}

// Both sides probe the same targets with the same options: the verdict
// compares like with like.
func TestCheckSameProbesOnBothSides(t *testing.T) {
	cfg := fixture(t, `["192.0.2.1", "192.0.2.2"]`, cluster.Slave)
	var f fakes
	code, first, _ := run(t, f.config(), "--config", cfg, "--method", "both", "-p", "5060", "-n", "2", "--interval", "50ms", "--probe-timeout", "300ms")
	if code != 0 {
		t.Fatalf("%d %q", code, first)
	}
	want := probe.Options{Method: probe.Both, Count: 2, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond, Ports: []int{5060}}
	for i, side := range []string{"local", "master"} {
		o := f.gotOptions[i]
		if o.Method != want.Method || o.Count != want.Count || o.Interval != want.Interval || o.Timeout != want.Timeout || len(o.Ports) != 1 || o.Ports[0] != 5060 {
			t.Errorf("%s options %+v, want %+v", side, o, want)
		}
		if len(f.gotTargets[i]) != 2 || f.gotTargets[i][0] != gw || f.gotTargets[i][1] != trunk {
			t.Errorf("%s targets %v", side, f.gotTargets[i])
		}
	}
}

func TestCheckRolesAndConfig(t *testing.T) {
	for _, tc := range []struct {
		name, targets, role string
		args                []string
		code                int
		first               string
	}{
		{"skipped on the master", `["192.0.2.1"]`, cluster.Master, nil, 0, "PBX_NET_FAILOVER OK - skipped: node is master (applies to slave)"},
		{"skipped on a standby", `["192.0.2.1"]`, cluster.Standby, nil, 0, "PBX_NET_FAILOVER OK - skipped: node is standby (applies to slave)"},
		{"no targets", `[]`, cluster.Slave, nil, 3, "PBX_NET_FAILOVER UNKNOWN - usage: no telephony target: give -H/--host or set [telephony] targets in "},
		{"a bad target in the config", `["192.0.2.1", "gw"]`, cluster.Slave, nil, 3, `PBX_NET_FAILOVER UNKNOWN - usage: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fixture(t, tc.targets, tc.role)
			var f fakes
			code, first, out := run(t, f.config(), append([]string{"--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %d %q\nwant %d %q\n%s", code, first, tc.code, tc.first, out)
			}
			if code != 0 && f.masterCalls != 0 {
				t.Fatal("asked the master on a usage error")
			}
			if strings.Contains(tc.name, "bad target") && !strings.Contains(first, `telephony.targets[1]: "gw" is not an IP address`) {
				t.Fatalf("the message does not name the key: %q", first)
			}
		})
	}
}
