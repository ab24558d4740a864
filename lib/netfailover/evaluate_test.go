package netfailover

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

var (
	gw    = netip.MustParseAddr("192.0.2.1")
	trunk = netip.MustParseAddr("192.0.2.2")
)

func up(t netip.Addr, rtt time.Duration) probe.Result {
	return probe.Result{Target: t, Sent: 3, Received: 3, RTT: rtt, Reachable: true}
}

func down(t netip.Addr, why string) probe.Result {
	return probe.Result{Target: t, Sent: 3, Loss: 100, Err: why}
}

func TestEvaluate(t *testing.T) {
	one := []netip.Addr{gw}
	two := []netip.Addr{gw, trunk}
	ms := time.Millisecond
	for _, tc := range []struct {
		name          string
		targets       []netip.Addr
		min           int
		master, slave []probe.Result
		masterErr     error
		state         plugin.State
		first         string // up to the perfdata
		perf          string
	}{
		{"both reach the gateway", one, 1, []probe.Result{up(gw, 2*ms)}, []probe.Result{up(gw, ms)}, nil, plugin.OK,
			"PBX_NET_FAILOVER OK - master node1 and slave node2 reach 192.0.2.1",
			"master_reachable=1;;;0;1 master_rtt=0.002s;;;0 slave_reachable=1;;;0;1 slave_rtt=0.001s;;;0"},
		{"the master lost the network", one, 1, []probe.Result{down(gw, "no route to host")}, []probe.Result{up(gw, ms)}, nil, plugin.Critical,
			"PBX_NET_FAILOVER CRITICAL - master node1 reaches 0/1 telephony targets, slave node2 reaches 1/1: the master lost the telephony network (192.0.2.1 unreachable: no route to host)",
			"master_reachable=0;;;0;1 master_rtt=U;;;0 slave_reachable=1;;;0;1 slave_rtt=0.001s;;;0"},
		{"the network is down for both", one, 1, []probe.Result{down(gw, "")}, []probe.Result{down(gw, "")}, nil, plugin.Warning,
			"PBX_NET_FAILOVER WARNING - telephony network down for both nodes: a failover would not help (master node1 reaches 0/1, slave node2 0/1)",
			"master_reachable=0;;;0;1 master_rtt=U;;;0 slave_reachable=0;;;0;1 slave_rtt=U;;;0"},
		{"the slave lost the network", one, 1, []probe.Result{up(gw, ms)}, []probe.Result{down(gw, "")}, nil, plugin.Warning,
			"PBX_NET_FAILOVER WARNING - slave node2 reaches only 0/1 telephony targets: it could not take the telephony network over (master node1 reaches 1/1, slave node2 0/1)",
			""},
		{"master misses one of two, enough for --min-targets 1", two, 1,
			[]probe.Result{up(gw, ms), down(trunk, "")}, []probe.Result{up(gw, ms), up(trunk, ms)}, nil, plugin.Warning,
			"PBX_NET_FAILOVER WARNING - master node1 cannot reach 192.0.2.2, which the slave reaches (master node1 reaches 1/2, slave node2 2/2)",
			"master_reachable=1;;;0;2 master_rtt=0.001s;;;0 slave_reachable=2;;;0;2 slave_rtt=0.001s;;;0"},
		{"master misses one of two, too few for --min-targets 2", two, 2,
			[]probe.Result{up(gw, ms), down(trunk, "timeout")}, []probe.Result{up(gw, ms), up(trunk, 3*ms)}, nil, plugin.Critical,
			"PBX_NET_FAILOVER CRITICAL - master node1 reaches 1/2 telephony targets, slave node2 reaches 2/2: the master lost the telephony network (192.0.2.2 unreachable: timeout)",
			"master_reachable=1;;;0;2 master_rtt=0.001s;;;0 slave_reachable=2;;;0;2 slave_rtt=0.002s;;;0"},
		{"each misses one, --min-targets 2", two, 2,
			[]probe.Result{up(gw, ms), down(trunk, "")}, []probe.Result{down(gw, ""), up(trunk, ms)}, nil, plugin.Warning,
			"PBX_NET_FAILOVER WARNING - telephony network down for both nodes: a failover would not help (master node1 reaches 1/2, slave node2 1/2)", ""},
		{"slave misses one the master reaches", two, 1,
			[]probe.Result{up(gw, ms), up(trunk, ms)}, []probe.Result{up(gw, ms), down(trunk, "")}, nil, plugin.OK,
			"PBX_NET_FAILOVER OK - master node1 reaches 2/2, slave node2 1/2 telephony targets", ""},
		{"master's results out of order", two, 2,
			[]probe.Result{up(trunk, ms), up(gw, ms)}, []probe.Result{up(gw, ms), up(trunk, ms)}, nil, plugin.OK,
			"PBX_NET_FAILOVER OK - master node1 reaches 2/2, slave node2 2/2 telephony targets", ""},
		{"master left a target out", two, 1,
			[]probe.Result{up(gw, ms)}, []probe.Result{up(gw, ms), up(trunk, ms)}, nil, plugin.Unknown,
			"PBX_NET_FAILOVER UNKNOWN - master node1 returned no result for 192.0.2.2", ""},
		{"master not reachable over SSH", one, 1, nil, []probe.Result{up(gw, ms)}, errors.New("dialing 198.51.100.1:22: connection refused"), plugin.Unknown,
			"PBX_NET_FAILOVER UNKNOWN - cannot ask master node1 to probe the telephony targets: dialing 198.51.100.1:22: connection refused (check_pbx_master_alive judges a master that does not answer)",
			"master_reachable=U;;;0;1 master_rtt=U;;;0 slave_reachable=1;;;0;1 slave_rtt=0.001s;;;0"},
		{"no CAP_NET_RAW here: not probed, so UNKNOWN", one, 1, []probe.Result{down(gw, "no route to host")},
			[]probe.Result{{Target: gw, Loss: 100, Denied: true, Err: "cannot open an ICMP socket: raw sockets need CAP_NET_RAW"}}, nil, plugin.Unknown,
			"PBX_NET_FAILOVER UNKNOWN - cannot probe 192.0.2.1 from slave node2: cannot open an ICMP socket: raw sockets need CAP_NET_RAW (setcap cap_net_raw+ep on this plugin, as make install and the package do)", ""},
		{"the master's text is cleaned", one, 1, []probe.Result{down(gw, "bad\n| x=1")}, []probe.Result{up(gw, ms)}, nil, plugin.Critical,
			"PBX_NET_FAILOVER CRITICAL - master node1 reaches 0/1 telephony targets, slave node2 reaches 1/1: the master lost the telephony network (192.0.2.1 unreachable: bad / x=1)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(Observation{
				Targets: tc.targets, MinTargets: tc.min, SlaveName: "node2", MasterName: "node1",
				Slave: tc.slave, Master: tc.master, MasterErr: tc.masterErr,
			})
			out := r.Format("PBX_NET_FAILOVER")
			first, _, _ := strings.Cut(out, "\n")
			text, perf, _ := strings.Cut(first, " | ")
			if r.Overall() != tc.state || text != tc.first {
				t.Fatalf("got %s %q\nwant %s %q\n%s", r.Overall(), text, tc.state, tc.first, out)
			}
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Fatalf("perfdata %q: %v", perf, err)
			}
			if tc.perf != "" && perf != tc.perf {
				t.Fatalf("perfdata %q\nwant     %q", perf, tc.perf)
			}
			// Every target has its line in the long output.
			for _, tg := range tc.targets {
				if !strings.Contains(out, "\n"+tg.String()+": ") {
					t.Fatalf("no long output line for %s:\n%s", tg, out)
				}
			}
		})
	}
}
