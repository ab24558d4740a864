package clustercheck

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

// Observation is everything check_pbx_cluster saw.
type Observation struct {
	Self cluster.State // this node's state file

	VIP      netip.Prefix
	Iface    string
	Bound    bool  // the VIP is bound on Iface here
	BoundErr error // could not tell

	ARP ARP

	PeerName string    // from cluster.toml, for messages
	Peer     *PeerView // nil when PeerErr
	PeerErr  error
	// PeerConnected: SSH worked, the peer answered but could not say its
	// state (PeerErr says why).
	PeerConnected bool
	// PeerVIPBound is whether the peer says the VIP is bound on its side
	// (nil: it did not say). It may come without a state.
	PeerVIPBound *bool
	PeerTook     time.Duration
}

// ARP is the outcome of duplicate address detection for the VIP.
type ARP struct {
	Skipped bool             // --arp-wait 0
	Found   bool             // another MAC claims the VIP
	MAC     net.HardwareAddr // that MAC
	Err     error
	Wait    time.Duration // how long it listened
}

// PeerView is what the peer's state file says, as read over SSH.
type PeerView struct {
	Node  string
	Role  string
	Epoch uint64
}

const splitBrain = "split brain: "

// Evaluate judges an observation. Each concern (role, VIP, ARP, peer) is a
// sub-result; the summary carries the worst ones, a split brain first.
func Evaluate(o Observation) plugin.Result {
	peerName := o.PeerName
	if peerName == "" {
		peerName = "the peer"
	} else {
		peerName = "peer " + peerName
	}
	perf := []plugin.Perf{
		{Label: "epoch", Value: float64(o.Self.Epoch), Min: plugin.F(0)},
		{Label: "peer_epoch", Unknown: o.Peer == nil, Min: plugin.F(0)},
		{Label: "peer_time", Value: o.PeerTook.Seconds(), UOM: "s", Min: plugin.F(0)},
	}
	if o.Peer != nil {
		perf[1].Value = float64(o.Peer.Epoch)
	}

	if o.Self.Role != cluster.Master {
		// Only with --role any or --role slave: the gate skips otherwise.
		r := plugin.Resultf(plugin.Unknown, "this node (%s) is %s at epoch %d: check_pbx_cluster judges the cluster from the master (run it there, --role master)",
			o.Self.Node, o.Self.Role, o.Self.Epoch)
		r.Perf = perf[:1]
		if o.BoundErr == nil && o.Bound {
			r.Long = append(r.Long, fmt.Sprintf("the VIP %s is bound on %s here although this node is %s", o.VIP.Addr(), o.Iface, o.Self.Role))
		}
		return r
	}

	subs := []plugin.Result{
		plugin.Resultf(plugin.OK, "%s is master at epoch %d", nodeName(o.Self.Node), o.Self.Epoch),
		evalVIP(o),
	}
	if !o.ARP.Skipped {
		subs = append(subs, evalARP(o))
	}
	subs = append(subs, evalPeer(o, peerName))

	r := plugin.Result{Subs: subs, Perf: perf}
	r.Summary = summary(subs)
	if r.Overall() == plugin.OK {
		arp := ", no other ARP answer"
		if o.ARP.Skipped {
			arp = ""
		}
		r.Summary = fmt.Sprintf("%s master at epoch %d, VIP %s on %s%s, %s slave at epoch %d",
			nodeName(o.Self.Node), o.Self.Epoch, o.VIP.Addr(), o.Iface, arp, peerName, o.Peer.Epoch)
	}
	return r
}

func nodeName(n string) string {
	if n == "" {
		return "this node"
	}
	return n
}

func evalVIP(o Observation) plugin.Result {
	vip := o.VIP.Addr()
	switch {
	case o.BoundErr != nil:
		return plugin.Resultf(plugin.Unknown, "cannot tell whether VIP %s is bound: %s", vip, plugin.Clean(o.BoundErr.Error(), 0))
	case !o.Bound:
		return plugin.Resultf(plugin.Critical, "VIP %s not bound on %s: phones and gateways cannot reach this master", vip, o.Iface)
	}
	return plugin.Resultf(plugin.OK, "VIP %s bound on %s", vip, o.Iface)
}

func evalARP(o Observation) plugin.Result {
	vip := o.VIP.Addr()
	switch {
	case o.ARP.Err != nil:
		return plugin.Resultf(plugin.Unknown, "cannot probe ARP for VIP %s: %s", vip, plugin.Clean(o.ARP.Err.Error(), 0))
	case o.ARP.Found:
		return plugin.Resultf(plugin.Critical, "%s%s also answers ARP for VIP %s", splitBrain, o.ARP.MAC, vip)
	}
	return plugin.Resultf(plugin.OK, "no other host answers ARP for VIP %s (listened %s)", vip, o.ARP.Wait.Round(time.Millisecond))
}

func evalPeer(o Observation, who string) plugin.Result {
	peerHasVIP := o.PeerVIPBound != nil && *o.PeerVIPBound
	if o.Peer == nil {
		why := "no answer"
		if o.PeerErr != nil {
			why = plugin.Clean(o.PeerErr.Error(), 0)
		}
		switch {
		case peerHasVIP:
			return plugin.Resultf(plugin.Critical, "%s%s also has VIP %s bound (and cannot report its state: %s)", splitBrain, who, o.VIP.Addr(), why)
		case o.PeerConnected:
			return plugin.Resultf(plugin.Warning, "%s cannot report its state: %s: no redundancy", who, why)
		}
		return plugin.Resultf(plugin.Warning, "%s unreachable over SSH: %s: no redundancy", who, why)
	}
	p, ours := *o.Peer, o.Self.Epoch
	if p.Node != "" && p.Node == o.Self.Node {
		return plugin.Resultf(plugin.Unknown, "%s reports being %s, this node's own name: does SSH reach this node itself?", who, plugin.Clean(p.Node, 64))
	}
	if peerHasVIP && p.Role != cluster.Master {
		return plugin.Resultf(plugin.Critical, "%s%s, %s at epoch %d, also has VIP %s bound", splitBrain, who, plugin.Clean(p.Role, 32), p.Epoch, o.VIP.Addr())
	}
	switch p.Role {
	case cluster.Master:
		s := fmt.Sprintf("%s%s is also master", splitBrain, who)
		switch {
		case p.Epoch > ours:
			s += fmt.Sprintf(", at epoch %d above ours (%d): this node must yield", p.Epoch, ours)
		case p.Epoch < ours:
			s += fmt.Sprintf(", at epoch %d below ours (%d): the peer must yield", p.Epoch, ours)
		default:
			s += fmt.Sprintf(" at the same epoch %d", ours)
		}
		if peerHasVIP {
			s += fmt.Sprintf(" and has VIP %s bound", o.VIP.Addr())
		}
		return plugin.Resultf(plugin.Critical, "%s", s)
	case cluster.Slave, cluster.Standby:
	default:
		return plugin.Resultf(plugin.Unknown, "%s reports role %q, not master, slave or standby", who, plugin.Clean(p.Role, 32))
	}
	if p.Epoch > ours {
		return plugin.Resultf(plugin.Critical, "%s is %s at epoch %d, above ours (%d): this node's mastership is stale and must yield", who, p.Role, p.Epoch, ours)
	}
	if p.Role == cluster.Standby {
		return plugin.Resultf(plugin.Warning, "%s is standby at epoch %d: no redundancy until it rejoins", who, p.Epoch)
	}
	return plugin.Resultf(plugin.OK, "%s is slave at epoch %d", who, p.Epoch)
}

// summary joins the worst sub-results, split brains first: that is the
// word an admin paged at night must read first.
func summary(subs []plugin.Result) string {
	worst := plugin.OK
	for _, s := range subs {
		worst = plugin.Worst(worst, s.State)
	}
	var first, rest []string
	for _, s := range subs {
		if s.State != worst && worst != plugin.OK {
			continue
		}
		if strings.HasPrefix(s.Summary, splitBrain) {
			first = append(first, s.Summary)
		} else {
			rest = append(rest, s.Summary)
		}
	}
	return strings.Join(append(first, rest...), "; ")
}
