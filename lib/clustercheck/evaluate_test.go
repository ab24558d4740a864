package clustercheck

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

var otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x12}

// healthy is node1, master at epoch 2 with the VIP, node2 its slave.
func healthy() Observation {
	return Observation{
		Self:     cluster.State{Node: "node1", Role: cluster.Master, Epoch: 2},
		VIP:      netip.MustParsePrefix("192.0.2.10/24"),
		Iface:    "tel0",
		Bound:    true,
		ARP:      ARP{Wait: 500 * time.Millisecond},
		PeerName: "node2",
		Peer:     &PeerView{Node: "node2", Role: cluster.Slave, Epoch: 2},
		PeerTook: 80 * time.Millisecond,
	}
}

func ptr[T any](v T) *T { return &v }

func TestEvaluate(t *testing.T) {
	type mod func(*Observation)
	peer := func(role string, epoch uint64) mod {
		return func(o *Observation) { o.Peer = &PeerView{Node: "node2", Role: role, Epoch: epoch} }
	}
	noVIP := func(o *Observation) { o.Bound = false }
	arpClaim := func(o *Observation) { o.ARP.Found, o.ARP.MAC = true, otherMAC }
	unreachable := func(o *Observation) {
		o.Peer, o.PeerErr = nil, errors.New("dialing 198.51.100.2:22: connection refused")
	}
	for _, tc := range []struct {
		name  string
		mods  []mod
		state plugin.State
		first string // the first line up to the perfdata
	}{
		{"healthy", nil, plugin.OK,
			"PBX_CLUSTER OK - node1 master at epoch 2, VIP 192.0.2.10 on tel0, no other ARP answer, peer node2 slave at epoch 2"},
		{"peer slave at a lower epoch", []mod{peer(cluster.Slave, 1)}, plugin.OK,
			"PBX_CLUSTER OK - node1 master at epoch 2, VIP 192.0.2.10 on tel0, no other ARP answer, peer node2 slave at epoch 1"},
		{"arp check skipped", []mod{func(o *Observation) { o.ARP = ARP{Skipped: true} }}, plugin.OK,
			"PBX_CLUSTER OK - node1 master at epoch 2, VIP 192.0.2.10 on tel0, peer node2 slave at epoch 2"},

		{"another MAC answers for the VIP", []mod{arpClaim}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: 02:00:00:00:00:12 also answers ARP for VIP 192.0.2.10"},
		{"VIP missing here", []mod{noVIP}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - VIP 192.0.2.10 not bound on tel0: phones and gateways cannot reach this master"},
		{"VIP missing here and held by another MAC: split brain first", []mod{noVIP, arpClaim}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: 02:00:00:00:00:12 also answers ARP for VIP 192.0.2.10; VIP 192.0.2.10 not bound on tel0: phones and gateways cannot reach this master"},
		{"peer also master at the same epoch", []mod{peer(cluster.Master, 2)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 is also master at the same epoch 2"},
		{"peer also master at a higher epoch", []mod{peer(cluster.Master, 3)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 is also master, at epoch 3 above ours (2): this node must yield"},
		{"peer also master at a lower epoch", []mod{peer(cluster.Master, 1)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 is also master, at epoch 1 below ours (2): the peer must yield"},
		{"peer slave holding the VIP", []mod{func(o *Observation) { o.PeerVIPBound = ptr(true) }}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2, slave at epoch 2, also has VIP 192.0.2.10 bound"},
		{"peer master holding the VIP", []mod{peer(cluster.Master, 2), func(o *Observation) { o.PeerVIPBound = ptr(true) }}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 is also master at the same epoch 2 and has VIP 192.0.2.10 bound"},
		{"peer says the VIP is not bound there", []mod{func(o *Observation) { o.PeerVIPBound = ptr(false) }}, plugin.OK,
			"PBX_CLUSTER OK - node1 master at epoch 2, VIP 192.0.2.10 on tel0, no other ARP answer, peer node2 slave at epoch 2"},
		{"both split brains", []mod{arpClaim, peer(cluster.Master, 2)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: 02:00:00:00:00:12 also answers ARP for VIP 192.0.2.10; split brain: peer node2 is also master at the same epoch 2"},
		{"peer slave at a higher epoch", []mod{peer(cluster.Slave, 3)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - peer node2 is slave at epoch 3, above ours (2): this node's mastership is stale and must yield"},
		{"peer standby at a higher epoch", []mod{peer(cluster.Standby, 4)}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - peer node2 is standby at epoch 4, above ours (2): this node's mastership is stale and must yield"},

		{"peer standby", []mod{peer(cluster.Standby, 2)}, plugin.Warning,
			"PBX_CLUSTER WARNING - peer node2 is standby at epoch 2: no redundancy until it rejoins"},
		{"peer unreachable", []mod{unreachable}, plugin.Warning,
			"PBX_CLUSTER WARNING - peer node2 unreachable over SSH: dialing 198.51.100.2:22: connection refused: no redundancy"},
		{"peer unreachable, without error text or name", []mod{unreachable, func(o *Observation) { o.PeerErr, o.PeerName = nil, "" }}, plugin.Warning,
			"PBX_CLUSTER WARNING - the peer unreachable over SSH: no answer: no redundancy"},
		{"peer unreachable and VIP missing", []mod{unreachable, noVIP}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - VIP 192.0.2.10 not bound on tel0: phones and gateways cannot reach this master"},
		{"peer cannot read its state file", []mod{func(o *Observation) {
			o.Peer, o.PeerConnected, o.PeerErr = nil, true, errors.New("peer command state: node2 says: no state file /var/lib/pbxha/state.json")
		}}, plugin.Warning,
			"PBX_CLUSTER WARNING - peer node2 cannot report its state: peer command state: node2 says: no state file /var/lib/pbxha/state.json: no redundancy"},
		{"peer without state but with the VIP", []mod{func(o *Observation) {
			o.Peer, o.PeerConnected, o.PeerErr, o.PeerVIPBound = nil, true, errors.New("no state file"), ptr(true)
		}}, plugin.Critical,
			"PBX_CLUSTER CRITICAL - split brain: peer node2 also has VIP 192.0.2.10 bound (and cannot report its state: no state file)"},
		{"peer error text is cleaned", []mod{func(o *Observation) { o.Peer, o.PeerErr = nil, errors.New("ssh: handshake failed\n| evil=1") }}, plugin.Warning,
			"PBX_CLUSTER WARNING - peer node2 unreachable over SSH: ssh: handshake failed / evil=1: no redundancy"},

		{"ARP socket refused", []mod{func(o *Observation) {
			o.ARP.Err = errors.New("opening an ARP socket on tel0: permission denied (needs root or CAP_NET_RAW)")
		}}, plugin.Unknown,
			"PBX_CLUSTER UNKNOWN - cannot probe ARP for VIP 192.0.2.10: opening an ARP socket on tel0: permission denied (needs root or CAP_NET_RAW)"},
		{"interface missing", []mod{func(o *Observation) { o.BoundErr = errors.New(`interface "tel0" not found on this node`) }}, plugin.Unknown,
			`PBX_CLUSTER UNKNOWN - cannot tell whether VIP 192.0.2.10 is bound: interface "tel0" not found on this node`},
		{"unknown outranks warning", []mod{unreachable, func(o *Observation) { o.ARP.Err = errors.New("boom") }}, plugin.Unknown,
			"PBX_CLUSTER UNKNOWN - cannot probe ARP for VIP 192.0.2.10: boom"},
		{"peer reports our own name", []mod{func(o *Observation) { o.Peer.Node = "node1" }}, plugin.Unknown,
			"PBX_CLUSTER UNKNOWN - peer node2 reports being node1, this node's own name: does SSH reach this node itself?"},
		{"peer reports a role that is none", []mod{peer("boss\n|x", 1)}, plugin.Unknown,
			`PBX_CLUSTER UNKNOWN - peer node2 reports role "boss /x", not master, slave or standby`},
		{"this node is slave (--role any)", []mod{func(o *Observation) { o.Self.Role, o.Self.Node = cluster.Slave, "node2" }}, plugin.Unknown,
			"PBX_CLUSTER UNKNOWN - this node (node2) is slave at epoch 2: check_pbx_cluster judges the cluster from the master (run it there, --role master)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := healthy()
			for _, m := range tc.mods {
				m(&o)
			}
			r := Evaluate(o)
			out := r.Format("PBX_CLUSTER")
			first, _, _ := strings.Cut(out, "\n")
			text, perf, _ := strings.Cut(first, " | ")
			if r.Overall() != tc.state || text != tc.first {
				t.Fatalf("got %s %q\nwant %s %q\n%s", r.Overall(), text, tc.state, tc.first, out)
			}
			items, err := plugin.SplitPerfdata(perf)
			if err != nil {
				t.Fatalf("perfdata %q: %v", perf, err)
			}
			if !strings.HasPrefix(perf, "epoch=") {
				t.Fatalf("perfdata %q does not start with epoch", perf)
			}
			if o.Self.Role == cluster.Master {
				wantPeer := "peer_epoch=U"
				if o.Peer != nil {
					wantPeer = "peer_epoch=" + plugin.FormatNumber(float64(o.Peer.Epoch))
				}
				if len(items) != 3 || !strings.HasPrefix(items[1], wantPeer+";") {
					t.Fatalf("perfdata %q, want %s", perf, wantPeer)
				}
			}
		})
	}
}

// The sub-results show in the long output, each with its state, so an
// admin sees what was fine as well as what was not.
func TestEvaluateLongOutput(t *testing.T) {
	o := healthy()
	o.ARP.Found, o.ARP.MAC = true, otherMAC
	out := Evaluate(o).Format("PBX_CLUSTER")
	for _, want := range []string{
		"\\_ [OK] node1 is master at epoch 2\n",
		"\\_ [OK] VIP 192.0.2.10 bound on tel0\n",
		"\\_ [CRITICAL] split brain: 02:00:00:00:00:12 also answers ARP for VIP 192.0.2.10\n",
		"\\_ [OK] peer node2 is slave at epoch 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("long output lacks %q:\n%s", want, out)
		}
	}
}
