package clustercheck

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

const testConfig = `node = "node1"
state_file = "STATE"
[vip]
address = "192.0.2.10/24"
interface = "tel0"
[[nodes]]
name = "node1"
telephony_ip = "192.0.2.11"
cluster_ip = "198.51.100.1"
[[nodes]]
name = "node2"
telephony_ip = "192.0.2.12"
cluster_ip = "198.51.100.2"
`

// fixture writes a cluster.toml and, unless state is nil, a state file.
func fixture(t *testing.T, cfgText string, state *cluster.State) (cfgPath, statePath string) {
	t.Helper()
	dir := t.TempDir()
	statePath = filepath.Join(dir, "state.json")
	cfgPath = filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(cfgText, "STATE", statePath)), 0o640); err != nil {
		t.Fatal(err)
	}
	if state != nil {
		if err := cluster.WriteState(statePath, *state); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, statePath
}

// fakes is a checkConfig whose system seams answer as a healthy master's.
type fakes struct {
	bound     bool
	boundArgs string
	claim     net.HardwareAddr
	detects   atomic.Int32
	peer      PeerView
	peerErr   error
	peerHang  bool
}

func (f *fakes) config() *checkConfig {
	c := newConfig()
	c.vipBound = func(iface string, vip netip.Prefix) (bool, error) {
		f.boundArgs = iface + " " + vip.String()
		return f.bound, nil
	}
	c.detect = func(ctx context.Context, iface string, ip netip.Addr, own net.HardwareAddr) (net.HardwareAddr, bool, error) {
		f.detects.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return nil, false, errors.New("no deadline on the ARP probe")
		}
		if f.claim != nil {
			return f.claim, true, nil
		}
		<-ctx.Done()
		return nil, false, nil
	}
	c.peerState = func(ctx context.Context, cfg *config.Config) (PeerView, bool, *bool, error) {
		if f.peerHang {
			<-ctx.Done()
			return PeerView{}, false, nil, ctx.Err()
		}
		return f.peer, f.peerErr == nil, nil, f.peerErr
	}
	return c
}

func healthyFakes() *fakes {
	return &fakes{bound: true, peer: PeerView{Node: "node2", Role: cluster.Slave, Epoch: 1}}
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

var master1 = &cluster.State{Node: "node1", Role: cluster.Master, Epoch: 1, Since: time.Unix(1700000000, 0)}

func TestCheck(t *testing.T) {
	cfg, _ := fixture(t, testConfig, master1)
	for _, tc := range []struct {
		name  string
		fakes func(*fakes)
		args  []string
		code  int
		first string
	}{
		{"healthy", nil, nil, 0,
			"PBX_CLUSTER OK - node1 master at epoch 1, VIP 192.0.2.10 on tel0, no other ARP answer, peer node2 slave at epoch 1 | epoch=1;;;0 peer_epoch=1;;;0 peer_time="},
		{"split brain by ARP", func(f *fakes) { f.claim = otherMAC }, nil, 2,
			"PBX_CLUSTER CRITICAL - split brain: 02:00:00:00:00:12 also answers ARP for VIP 192.0.2.10 |"},
		{"split brain by the peer's state", func(f *fakes) { f.peer.Role = cluster.Master }, nil, 2,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 is also master at the same epoch 1 |"},
		{"VIP missing", func(f *fakes) { f.bound = false }, nil, 2,
			"PBX_CLUSTER CRITICAL - VIP 192.0.2.10 not bound on tel0"},
		{"peer refuses SSH", func(f *fakes) { f.peerErr = errors.New("connection refused") }, nil, 1,
			"PBX_CLUSTER WARNING - peer node2 unreachable over SSH: connection refused: no redundancy | epoch=1;;;0 peer_epoch=U;;;0"},
		// A hung peer is WARNING within -t, never the timeout's CRITICAL,
		// which would fail the cluster over to that very peer.
		{"peer hangs", func(f *fakes) { f.peerHang = true }, []string{"-t", "1"}, 1,
			"PBX_CLUSTER WARNING - peer node2 unreachable over SSH: no answer within 0.8s: no redundancy"},
		{"flags override the VIP", nil, []string{"--vip", "192.0.2.20/24", "--interface", "tel1"}, 0,
			"PBX_CLUSTER OK - node1 master at epoch 1, VIP 192.0.2.20 on tel1,"},
		{"--arp-wait 0 skips ARP", func(f *fakes) { f.claim = otherMAC }, []string{"--arp-wait", "0"}, 0,
			"PBX_CLUSTER OK - node1 master at epoch 1, VIP 192.0.2.10 on tel0, peer node2 slave at epoch 1"},
		{"bad --vip", nil, []string{"--vip", "192.0.2.10"}, 3,
			`PBX_CLUSTER UNKNOWN - usage: flag --vip: "192.0.2.10" is not an IPv4 address with prefix length (e.g. 192.0.2.10/24)`},
		{"--arp-wait beyond -t", nil, []string{"--arp-wait", "5s", "-t", "2"}, 3,
			"PBX_CLUSTER UNKNOWN - usage: flag --arp-wait: 5s is not less than -t 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFakes()
			if tc.fakes != nil {
				tc.fakes(f)
			}
			code, first, out := run(t, f.config(), append([]string{"--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %d %q\nwant %d %q\n%s", code, first, tc.code, tc.first, out)
			}
		})
	}
}

func TestCheckFlagsReachTheSystem(t *testing.T) {
	cfg, _ := fixture(t, testConfig, master1)
	f := healthyFakes()
	run(t, f.config(), "--config", cfg, "--vip", "192.0.2.20/24", "--interface", "tel1")
	if f.boundArgs != "tel1 192.0.2.20/24" || f.detects.Load() != 1 {
		t.Fatalf("VIPBound got %q, detect ran %d times", f.boundArgs, f.detects.Load())
	}
	f = healthyFakes()
	run(t, f.config(), "--config", cfg, "--arp-wait", "0")
	if f.detects.Load() != 0 {
		t.Fatal("--arp-wait 0 still probed ARP")
	}
}

// A state file that is missing or broken is UNKNOWN, never CRITICAL: no
// failover on a broken file. With the default --role master the gate
// finds it; with --role any the check itself does.
func TestCheckBrokenStateFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string // "" leaves the file out
		want    string
	}{
		{"missing", "", "no state file"},
		{"not JSON", "{", "is not valid JSON"},
		{"bad role", `{"node":"node1","role":"boss","epoch":1}`, `role "boss" is not master, slave or standby`},
		{"a directory", "DIR", "reading state file"},
	} {
		for _, role := range []string{plugin.RoleMaster, plugin.RoleAny} {
			t.Run(tc.name+"/--role "+role, func(t *testing.T) {
				cfg, state := fixture(t, testConfig, nil)
				switch tc.content {
				case "":
				case "DIR":
					os.Mkdir(state, 0o755)
				default:
					os.WriteFile(state, []byte(tc.content), 0o644)
				}
				f := healthyFakes()
				code, first, out := run(t, f.config(), "--config", cfg, "--role", role)
				if code != 3 || !strings.HasPrefix(first, "PBX_CLUSTER UNKNOWN - ") || !strings.Contains(first, tc.want) {
					t.Fatalf("got %d %q, want UNKNOWN naming %q\n%s", code, first, tc.want, out)
				}
				if f.detects.Load() != 0 {
					t.Fatal("probed ARP without knowing this node's role")
				}
			})
		}
	}
}

func TestCheckOnOtherRoles(t *testing.T) {
	for _, tc := range []struct {
		role  string
		args  []string
		code  int
		first string
	}{
		{cluster.Slave, nil, 0, "PBX_CLUSTER OK - skipped: node is slave (applies to master)"},
		{cluster.Standby, nil, 0, "PBX_CLUSTER OK - skipped: node is standby (applies to master)"},
		{cluster.Slave, []string{"--role", "any"}, 3, "PBX_CLUSTER UNKNOWN - this node (node1) is slave at epoch 1: check_pbx_cluster judges the cluster from the master"},
	} {
		t.Run(tc.role+strings.Join(tc.args, " "), func(t *testing.T) {
			cfg, _ := fixture(t, testConfig, &cluster.State{Node: "node1", Role: tc.role, Epoch: 1})
			f := healthyFakes()
			code, first, out := run(t, f.config(), append([]string{"--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %d %q\nwant %d %q\n%s", code, first, tc.code, tc.first, out)
			}
		})
	}
}

func TestCheckConfigProblems(t *testing.T) {
	noVIP := strings.Replace(testConfig, "[vip]\naddress = \"192.0.2.10/24\"\n", "[vip]\n", 1)
	noIface := strings.Replace(testConfig, "interface = \"tel0\"\n", "", 1)
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"no vip.address", noVIP, "PBX_CLUSTER UNKNOWN - usage: "},
		{"no vip.interface", noIface, "PBX_CLUSTER UNKNOWN - usage: "},
		{"bad toml", "node = ", "PBX_CLUSTER UNKNOWN - "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := fixture(t, tc.cfg, master1)
			code, first, out := run(t, healthyFakes().config(), "--config", cfg, "--role", "any")
			if code != 3 || !strings.HasPrefix(first, tc.want) {
				t.Fatalf("got %d %q\n%s", code, first, out)
			}
		})
	}
	code, first, _ := run(t, healthyFakes().config(), "--config", filepath.Join(t.TempDir(), "none.toml"), "--role", "any")
	if code != 3 || !strings.Contains(first, "reading config") {
		t.Fatalf("missing config: %d %q", code, first)
	}
}
