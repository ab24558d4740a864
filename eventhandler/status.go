package eventhandler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/failover"
	"pbxha/lib/peer"
)

func parseVIP(cfg *config.Config) (netip.Prefix, error) {
	if cfg.VIP.Address == "" {
		return netip.Prefix{}, fmt.Errorf("no vip.address")
	}
	return netip.ParsePrefix(cfg.VIP.Address)
}

// NodeStatus is one node in `status`.
type NodeStatus struct {
	Name        string                 `json:"name"`
	Reached     bool                   `json:"reached"`
	Error       string                 `json:"error,omitempty"`
	Role        string                 `json:"role,omitempty"`
	Epoch       uint64                 `json:"epoch"`
	Since       *time.Time             `json:"since,omitempty"`
	VIPBound    *bool                  `json:"vip_bound,omitempty"`
	Services    []peer.Running         `json:"services,omitempty"`
	Maintenance *cluster.Maintenance   `json:"maintenance,omitempty"`
	Last        *failover.LastFailover `json:"last_failover,omitempty"`
}

// Status is `status --json`.
type Status struct {
	Cluster   string                 `json:"cluster"`
	At        time.Time              `json:"at"`
	VIP       string                 `json:"vip"`
	ARPHolder string                 `json:"vip_arp"` // who answers ARP for the VIP
	Self      NodeStatus             `json:"self"`
	Peer      NodeStatus             `json:"peer"`
	Problems  []string               `json:"problems,omitempty"`
	Last      *failover.LastFailover `json:"last_failover,omitempty"`
}

func statusCmd(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	cfg, _, code := setup("status", args, stderr, func(fs *pflag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if code != ExitOK {
		return code
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := h.status(ctx)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		printStatus(stdout, st)
	}
	if len(st.Problems) > 0 {
		return ExitFailed
	}
	return ExitOK
}

func (h *handler) status(ctx context.Context) Status {
	cfg := h.cfg
	st := Status{Cluster: cfg.ClusterID, At: time.Now().UTC(), VIP: cfg.VIP.Address}
	// This node.
	self := NodeStatus{Name: h.self(), Reached: true}
	if s, err := cluster.ReadState(cfg.StateFile); err != nil {
		self.Error = err.Error()
	} else {
		self.Role, self.Epoch, self.Since = s.Role, s.Epoch, &s.Since
	}
	vip, vipErr := parseVIP(cfg)
	if vipErr == nil {
		if b, err := cluster.VIPBound(cfg.VIP.Interface, vip); err == nil {
			self.VIPBound = &b
		}
	}
	self.Services, _ = PeerServices(ctx, cfg)
	if m, on := h.maintenance(); on {
		self.Maintenance = &m
	}
	if lf, ok := failover.ReadLastFailover(cfg.StateFile); ok {
		self.Last = &lf
	}
	// The peer.
	pn := NodeStatus{Name: peerName(cfg)}
	if c, ps, err := h.peerState(ctx); err != nil {
		pn.Error = err.Error()
		if ps.State == nil && ps.Node != "" {
			pn.Reached = true
		}
	} else {
		c.Close()
		pn.Reached = true
		pn.Role, pn.Epoch, pn.Since = ps.State.Role, ps.State.Epoch, &ps.State.Since
		pn.VIPBound, pn.Services, pn.Maintenance = ps.VIPBound, ps.Services, ps.Maintenance
		var lf failover.LastFailover
		if len(ps.LastFailover) > 0 && json.Unmarshal(ps.LastFailover, &lf) == nil {
			pn.Last = &lf
		}
	}
	// Who answers ARP for the VIP, seen from here.
	switch {
	case vipErr != nil:
		st.ARPHolder = "no VIP configured"
	case self.VIPBound != nil && *self.VIPBound:
		st.ARPHolder = self.Name + " (bound here)"
	default:
		dctx, cancel := context.WithTimeout(ctx, failover.DADTimeout)
		mac, dup, err := cluster.DetectDuplicate(dctx, cfg.VIP.Interface, vip.Addr(), nil)
		cancel()
		switch {
		case err != nil:
			st.ARPHolder = "unknown (" + err.Error() + ")"
		case !dup:
			st.ARPHolder = "nobody"
		case pn.VIPBound != nil && *pn.VIPBound:
			st.ARPHolder = fmt.Sprintf("%s (MAC %s)", pn.Name, mac)
		default:
			st.ARPHolder = fmt.Sprintf("MAC %s (not a cluster node that says it holds the VIP)", mac)
		}
	}
	st.Self, st.Peer = self, pn
	st.Last = self.Last
	if pn.Last != nil && (st.Last == nil || pn.Last.At.After(st.Last.At)) {
		st.Last = pn.Last
	}
	st.Problems = problems(st)
	if rec := peerFenced(h.cfg); rec != "" {
		st.Problems = append(st.Problems, rec+": unfence_command runs once it is no longer a stale master")
	}
	return st
}

// problems lists what an admin must look at.
func problems(st Status) []string {
	var p []string
	s, n := st.Self, st.Peer
	if s.Error != "" {
		p = append(p, s.Name+": "+s.Error)
	}
	if !n.Reached || (n.Error != "" && n.Role == "") {
		p = append(p, n.Name+" not reached: "+n.Error)
	}
	masters := 0
	for _, x := range []NodeStatus{s, n} {
		if x.Role == cluster.Master {
			masters++
		}
		if x.Role == cluster.Standby {
			p = append(p, x.Name+" is standby: no redundancy until it rejoins")
		}
	}
	if masters == 2 {
		p = append(p, "TWO MASTERS: split brain")
	}
	if masters == 0 && s.Role != "" && n.Role != "" {
		p = append(p, "no master")
	}
	if strings.HasPrefix(st.ARPHolder, "nobody") {
		p = append(p, "nobody answers ARP for the VIP")
	}
	return p
}

func printStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "cluster %s, VIP %s, seen from %s at %s\n", st.Cluster, st.VIP, st.Self.Name, st.At.Format(time.RFC3339))
	for _, n := range []NodeStatus{st.Self, st.Peer} {
		who := n.Name
		if n.Name == st.Self.Name {
			who += " (this node)"
		}
		if n.Role == "" {
			fmt.Fprintf(w, "  %-20s unknown: %s\n", who, n.Error)
			continue
		}
		vip := "?"
		if n.VIPBound != nil {
			vip = map[bool]string{true: "yes", false: "no"}[*n.VIPBound]
		}
		var svcs []string
		for _, s := range n.Services {
			svcs = append(svcs, fmt.Sprintf("%s=%d", s.Name, s.Procs))
		}
		since := ""
		if n.Since != nil && !n.Since.IsZero() {
			since = " since " + n.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %-20s %s, epoch %d%s; VIP bound: %s; services: %s\n", who, n.Role, n.Epoch, since, vip, strings.Join(svcs, " "))
		if n.Maintenance != nil {
			fmt.Fprintf(w, "  %-20s %s\n", "", cluster.MaintenanceText(*n.Maintenance))
		}
	}
	fmt.Fprintf(w, "  VIP answered (ARP) by: %s\n", st.ARPHolder)
	if lf := st.Last; lf != nil {
		fmt.Fprintf(w, "  last failover: %s became master at %s (epoch %d, %s); VIP after %.1f ms, services after %.1f ms\n",
			lf.Node, lf.At.Format(time.RFC3339), lf.Epoch, lf.Trigger, lf.VIPMS, lf.ServicesMS)
	} else {
		fmt.Fprintln(w, "  last failover: none recorded")
	}
	if m := st.Self.Maintenance; m == nil && st.Peer.Maintenance == nil {
		fmt.Fprintln(w, "  maintenance: off")
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
}
