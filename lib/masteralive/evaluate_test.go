package masteralive

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/probe"
	"pbxha/lib/threshold"
)

var (
	telAddr = netip.MustParseAddr("192.0.2.11")
	cluAddr = netip.MustParseAddr("198.51.100.1")
)

func res(sent, recv int, rtt time.Duration, err string) probe.Result {
	r := probe.Result{Sent: sent, Received: recv, RTT: rtt, Err: err, Reachable: recv > 0, Loss: 100}
	if sent > 0 {
		r.Loss = float64(sent-recv) / float64(sent) * 100
	}
	return r
}

func paths(m probe.Method, tel, clu probe.Result) (Path, Path) {
	t := Path{Name: telName, Prefix: telPrefix, Addr: telAddr, Method: m, Result: tel}
	c := Path{Name: cluName, Prefix: cluPrefix, Addr: cluAddr, Method: m, Result: clu}
	if m == probe.Banner {
		t.Ports, c.Ports = []int{5038}, []int{22}
	}
	return t, c
}

func TestEvaluate(t *testing.T) {
	ok := res(3, 3, 300*time.Microsecond, "")
	lossy := res(3, 1, 2*time.Millisecond, "")
	dead := res(3, 0, 0, "")
	unreach := res(0, 0, 0, "sendto: network is unreachable")
	hung := res(3, 0, 0, "port 22: connected, but no greeting within 200ms")
	hungAMI := res(3, 0, 0, "port 5038: connected, but no greeting within 200ms")
	noCap := res(0, 0, 0, "cannot open an ICMP socket: raw sockets need CAP_NET_RAW and ping sockets a gid in /proc/sys/net/ipv4/ping_group_range")
	noCap.Denied = true
	cases := []struct {
		name     string
		method   probe.Method
		tel, clu probe.Result
		policy   Policy
		state    plugin.State
		summary  string
		perf     string
	}{
		{"both fine", probe.ICMP, ok, ok, Policy{}, plugin.OK,
			"master node1 reachable on telephony 192.0.2.11 and cluster 198.51.100.1",
			"tel_rta=0.0003s;;;0 tel_pl=0%;;;0;100 clu_rta=0.0003s;;;0 clu_pl=0%;;;0;100"},
		{"one reply in three is alive", probe.ICMP, lossy, lossy, Policy{}, plugin.OK,
			"master node1 reachable on telephony 192.0.2.11 and cluster 198.51.100.1",
			"tel_rta=0.002s;;;0 tel_pl=66.7%;;;0;100 clu_rta=0.002s;;;0 clu_pl=66.7%;;;0;100"},
		{"loss warns when asked", probe.ICMP, lossy, ok, Policy{Loss: threshold.MustParse("50")}, plugin.Warning,
			"master node1 reachable on telephony 192.0.2.11 and cluster 198.51.100.1; telephony loss 66.7% (warning 50)",
			"tel_rta=0.002s;;;0 tel_pl=66.7%;50;;0;100 clu_rta=0.0003s;;;0 clu_pl=0%;50;;0;100"},
		{"slow warns when asked", probe.ICMP, ok, lossy, Policy{RTT: threshold.MustParse("0.001")}, plugin.Warning,
			"master node1 reachable on telephony 192.0.2.11 and cluster 198.51.100.1; cluster rta 2ms (warning 0.001s)",
			"tel_rta=0.0003s;0.001;;0 tel_pl=0%;;;0;100 clu_rta=0.002s;0.001;;0 clu_pl=66.7%;;;0;100"},
		{"telephony down", probe.ICMP, dead, ok, Policy{}, plugin.Warning,
			"master node1 unreachable on telephony 192.0.2.11, reachable on cluster 198.51.100.1: telephony path down",
			"tel_rta=U;;;0 tel_pl=100%;;;0;100 clu_rta=0.0003s;;;0 clu_pl=0%;;;0;100"},
		{"cluster down, with its reason", probe.ICMP, ok, unreach, Policy{}, plugin.Warning,
			"master node1 unreachable on cluster 198.51.100.1 (sendto: network is unreachable), reachable on telephony 192.0.2.11: cluster path down",
			"tel_rta=0.0003s;;;0 tel_pl=0%;;;0;100 clu_rta=U;;;0 clu_pl=100%;;;0;100"},
		{"one path down and the other lossy: still only a warning", probe.ICMP, dead, lossy, Policy{Loss: threshold.MustParse("50")}, plugin.Warning,
			"master node1 unreachable on telephony 192.0.2.11, reachable on cluster 198.51.100.1: telephony path down; cluster loss 66.7% (warning 50)",
			""},
		{"both down", probe.ICMP, dead, unreach, Policy{}, plugin.Critical,
			"master node1 unreachable on telephony 192.0.2.11 and cluster 198.51.100.1",
			"tel_rta=U;;;0 tel_pl=100%;;;0;100 clu_rta=U;;;0 clu_pl=100%;;;0;100"},
		{"no CAP_NET_RAW: not probed, so UNKNOWN, never CRITICAL", probe.ICMP, noCap, noCap, Policy{}, plugin.Unknown,
			"cannot probe master node1 on telephony 192.0.2.11 and cluster 198.51.100.1: cannot open an ICMP socket: raw sockets need CAP_NET_RAW and ping sockets a gid in /proc/sys/net/ipv4/ping_group_range (setcap cap_net_raw+ep on this plugin, as make install and the package do)",
			"tel_rta=U;;;0 tel_pl=100%;;;0;100 clu_rta=U;;;0 clu_pl=100%;;;0;100"},
		{"no CAP_NET_RAW on one path only: still UNKNOWN", probe.ICMP, ok, noCap, Policy{}, plugin.Unknown,
			"cannot probe master node1 on cluster 198.51.100.1: cannot open an ICMP socket: raw sockets need CAP_NET_RAW and ping sockets a gid in /proc/sys/net/ipv4/ping_group_range (setcap cap_net_raw+ep on this plugin, as make install and the package do)",
			""},
		{"hung: accepts, never greets", probe.Banner, hungAMI, hung, Policy{}, plugin.Critical,
			"master node1 unreachable on telephony 192.0.2.11 port 5038 and cluster 198.51.100.1 port 22: it accepts connections but does not greet (hung?)",
			""},
		{"banner down on both, not hung", probe.Banner, dead, res(3, 0, 0, "port 22: connection refused"), Policy{}, plugin.Critical,
			"master node1 unreachable on telephony 192.0.2.11 port 5038 and cluster 198.51.100.1 port 22",
			""},
		{"banner one path", probe.Banner, ok, hung, Policy{}, plugin.Warning,
			"master node1 unreachable on cluster 198.51.100.1 port 22 (port 22: connected, but no greeting within 200ms), reachable on telephony 192.0.2.11 port 5038: cluster path down",
			""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tel, clu := paths(tc.method, tc.tel, tc.clu)
			r := Evaluate("node1", tel, clu, tc.policy)
			out := r.Format("PBX_MASTER_ALIVE")
			first, _, _ := strings.Cut(out, "\n")
			head, perf, _ := strings.Cut(first, " | ")
			if r.Overall() != tc.state || head != "PBX_MASTER_ALIVE "+tc.state.String()+" - "+tc.summary {
				t.Fatalf("got %q\nwant %s - %s", head, tc.state, tc.summary)
			}
			if tc.perf != "" && perf != tc.perf {
				t.Fatalf("perfdata\n got %q\nwant %q", perf, tc.perf)
			}
			if items, err := plugin.SplitPerfdata(perf); err != nil || len(items) != 4 {
				t.Fatalf("perfdata %q: %v %v", perf, items, err)
			}
			if strings.Count(out, "\n") != 3 {
				t.Fatalf("want one line per path in the long output:\n%s", out)
			}
		})
	}
}

func TestEvaluateWithoutName(t *testing.T) {
	tel, clu := paths(probe.ICMP, res(3, 0, 0, ""), res(3, 0, 0, ""))
	if r := Evaluate("", tel, clu, Policy{}); r.Summary != "master unreachable on telephony 192.0.2.11 and cluster 198.51.100.1" {
		t.Fatalf("%q", r.Summary)
	}
}

func TestVerboseShowsProbeDetail(t *testing.T) {
	ok := res(3, 3, time.Millisecond, "")
	ok.Detail = []string{"icmp 192.0.2.11 (raw socket): 3/3 answered"}
	tel, clu := paths(probe.ICMP, ok, ok)
	if r := Evaluate("node1", tel, clu, Policy{}); len(r.Long) != 2 {
		t.Fatalf("no -v: %q", r.Long)
	}
	if r := Evaluate("node1", tel, clu, Policy{Verbose: 1}); len(r.Long) != 4 || r.Long[1] != "    icmp 192.0.2.11 (raw socket): 3/3 answered" {
		t.Fatalf("-v: %q", r.Long)
	}
}
