package clustercheck

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// Flag names, used in usage messages too.
const (
	flagVIP       = "vip"
	flagInterface = "interface"
	flagARPWait   = "arp-wait"
)

// DefaultARPWait is how long the ARP probe listens for another claim on the
// VIP. A host that holds an address answers a probe within milliseconds on
// a LAN; three probes go out over the first 0.4 s.
const DefaultARPWait = 500 * time.Millisecond

// checkConfig is check_pbx_cluster's flags and its seams to the system
// (tests replace them).
type checkConfig struct {
	vip     string
	iface   string
	arpWait time.Duration

	prefix netip.Prefix // from vip, by validate

	vipBound  func(iface string, vip netip.Prefix) (bool, error)
	detect    func(ctx context.Context, iface string, ip netip.Addr, own net.HardwareAddr) (net.HardwareAddr, bool, error)
	peerState func(ctx context.Context, cfg *config.Config) (pv PeerView, connected bool, vipBound *bool, err error)
}

// Spec is check_pbx_cluster.
func Spec() plugin.Spec {
	return newConfig().spec()
}

func newConfig() *checkConfig {
	return &checkConfig{
		arpWait:   DefaultARPWait,
		vipBound:  cluster.VIPBound,
		detect:    cluster.DetectDuplicate,
		peerState: askPeer,
	}
}

func (c *checkConfig) spec() plugin.Spec {
	return plugin.Spec{
		Name:   "PBX_CLUSTER",
		Binary: "check_pbx_cluster",
		Description: "Run on the master: this node's state file says master; the VIP is bound on its interface\n" +
			"(netlink); no other machine answers ARP for the VIP (RFC 5227 probes from sender 0.0.0.0, which\n" +
			"change no neighbour's cache; needs root or CAP_NET_RAW); the peer, asked over SSH, is slave at an\n" +
			"epoch not above ours. Split brain (the peer also master, another MAC answering for the VIP), the\n" +
			"VIP missing here, or a peer at a higher epoch (this node must yield) → CRITICAL. Peer unreachable\n" +
			"or standby → WARNING (no redundancy). What cannot be checked (state file, interface, ARP socket)\n" +
			"→ UNKNOWN, so a broken file never fails the cluster over. VIP and interface default to [vip] of\n" +
			"cluster.toml.",
		Examples: []string{
			"check_pbx_cluster                              # [vip] and the peer of cluster.toml",
			"check_pbx_cluster --arp-wait 1s -v",
			"check_pbx_cluster --vip 192.0.2.10/24 --interface eth1",
		},
		DefaultRole: plugin.RoleMaster,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.vip, flagVIP, "", "the VIP with its prefix length, e.g. 192.0.2.10/24 (default: vip.address in cluster.toml)")
	fs.StringVar(&c.iface, flagInterface, "", "the interface the VIP is bound to (default: vip.interface in cluster.toml)")
	fs.DurationVar(&c.arpWait, flagARPWait, DefaultARPWait, "how long to listen for another host answering ARP for the VIP; 0 skips the ARP check")
}

func (c *checkConfig) validate(env *plugin.Env) error {
	if c.vip != "" {
		p, err := netip.ParsePrefix(c.vip)
		if err != nil || !p.Addr().Is4() {
			return plugin.Usagef("flag --%s: %q is not an IPv4 address with prefix length (e.g. 192.0.2.10/24)", flagVIP, c.vip)
		}
		c.prefix = p
	}
	if c.arpWait < 0 {
		return plugin.Usagef("flag --%s: %s is negative", flagARPWait, c.arpWait)
	}
	if c.arpWait >= env.Timeout {
		return plugin.Usagef("flag --%s: %s is not less than -t %s", flagARPWait, c.arpWait, env.Timeout)
	}
	return nil
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
	}
	if cfg == nil {
		return plugin.UsageResult(fmt.Errorf("no cluster config %s: check_pbx_cluster needs the VIP and the peer (give --config)", path))
	}
	env.Step("reading the state file %s", cfg.StateFile)
	self, err := cluster.ReadState(cfg.StateFile)
	if err != nil {
		// Never CRITICAL: a broken state file must not fail the cluster over.
		return plugin.Resultf(plugin.Unknown, "cannot tell this node's role: %s", plugin.Clean(err.Error(), 0))
	}

	o := Observation{Self: self, VIP: c.prefix, Iface: c.iface}
	if !o.VIP.IsValid() {
		if cfg.VIP.Address == "" {
			return plugin.UsageResult(fmt.Errorf("%s: no vip.address (or give --%s)", cfg.Path(), flagVIP))
		}
		o.VIP, _ = netip.ParsePrefix(cfg.VIP.Address) // config.Validate checked it
	}
	if o.Iface == "" {
		if o.Iface = cfg.VIP.Interface; o.Iface == "" {
			return plugin.UsageResult(fmt.Errorf("%s: no vip.interface (or give --%s)", cfg.Path(), flagInterface))
		}
	}
	if p := cfg.Peer(); p != nil {
		o.PeerName = p.Name
	}
	if self.Role != cluster.Master {
		o.Bound, o.BoundErr = c.vipBound(o.Iface, o.VIP)
		return Evaluate(o)
	}

	env.Step("checking VIP %s on %s, probing ARP for %s and asking %s over SSH", o.VIP, o.Iface, c.arpWait, orPeer(o.PeerName))
	var wg sync.WaitGroup
	wg.Go(func() { o.Bound, o.BoundErr = c.vipBound(o.Iface, o.VIP) })
	o.ARP.Skipped = c.arpWait == 0
	if !o.ARP.Skipped {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, c.arpWait)
			defer cancel()
			t0 := time.Now()
			o.ARP.MAC, o.ARP.Found, o.ARP.Err = c.detect(actx, o.Iface, o.VIP.Addr(), nil)
			o.ARP.Wait = time.Since(t0)
		})
	}
	wg.Go(func() {
		// The peer gets most of what is left of -t, not all: a hung peer
		// must come out as "peer unreachable" (WARNING), not as this
		// check's timeout, whose CRITICAL would fail the cluster over to
		// that very peer.
		pctx, cancel := context.WithTimeout(ctx, peerWait(ctx))
		defer cancel()
		t0 := time.Now()
		pv, connected, vipBound, err := c.peerState(pctx, cfg)
		o.PeerTook = time.Since(t0)
		o.PeerConnected, o.PeerVIPBound = connected, vipBound
		if err != nil {
			if pctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %ss", plugin.FormatNumber(math.Round(o.PeerTook.Seconds()*10)/10))
			}
			o.PeerErr = err
			return
		}
		o.Peer = &pv
	})
	wg.Wait()
	env.Debugf(1, "state file %s: %s at epoch %d since %s (%s)", cfg.StateFile, self.Role, self.Epoch, self.Since.Format(time.RFC3339), plugin.Clean(self.Reason, 0))
	if o.Peer != nil {
		env.Debugf(1, "peer state: node %q, role %s, epoch %d (asked in %s)", plugin.Clean(o.Peer.Node, 64), plugin.Clean(o.Peer.Role, 32), o.Peer.Epoch, o.PeerTook.Round(time.Millisecond))
	}
	return Evaluate(o)
}

func orPeer(name string) string {
	if name == "" {
		return "the peer"
	}
	return name
}

// peerWait is how long the peer may take: what is left before -t, less a
// fifth of it (at most a second) kept back for the verdict.
func peerWait(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 5 * time.Second
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}
