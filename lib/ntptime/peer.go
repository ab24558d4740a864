package ntptime

import (
	"context"
	"fmt"
	"math"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/plugin"
)

// Default skew thresholds in seconds: the nodes replicate databases and
// compare file times with each other, and a failover moves every call
// from one clock to the other.
const (
	DefaultSkewWarning  = "0.5"
	DefaultSkewCritical = "1"
)

// peerSamples is how many times the peer's clock is read over one
// connection; the reading with the shortest round trip is kept, as NTP's
// clock filter does, since its midpoint is the least uncertain.
const peerSamples = 3

// PeerSample is the clock skew to the other node.
type PeerSample struct {
	Node string        // the peer's name in cluster.toml ("" when unknown)
	Skew time.Duration // the peer's clock minus ours
	RTT  time.Duration // of the kept reading: the skew is within ±RTT/2
	Err  error
}

// MeasurePeer reads the peer's clock over SSH (lib/peer) a few times and
// keeps the reading with the shortest round trip.
func MeasurePeer(ctx context.Context, cfg *config.Config, opts ...peer.Option) PeerSample {
	s := PeerSample{}
	if cfg != nil {
		if p := cfg.Peer(); p != nil {
			s.Node = p.Name
		}
	}
	c, err := peer.Dial(ctx, cfg, append(opts, peer.ReadOnly())...)
	if err != nil {
		s.Err = err
		return s
	}
	defer c.Close()
	s.Node = c.Node()
	got := false
	for range peerSamples {
		skew, rtt, err := c.Skew(ctx)
		if err != nil {
			if !got {
				s.Err = err
			}
			break
		}
		if !got || rtt < s.RTT {
			s.Skew, s.RTT, got = skew, rtt, true
		}
	}
	if got {
		s.Err = nil
	}
	return s
}

// EvaluatePeer judges the skew to the peer. A peer that cannot be asked is
// UNKNOWN, not CRITICAL: whether the peer is alive is check_pbx_master_alive's
// and check_pbx_cluster's verdict, and this check must not double it.
func EvaluatePeer(s PeerSample, p Policy) plugin.Result {
	name := "peer"
	if s.Node != "" {
		name += " " + s.Node
	}
	perf := p.Skew.Perf("peer_skew", 0, "s")
	if s.Err != nil {
		perf.Unknown = true
		return plugin.Result{
			State:   plugin.Unknown,
			Summary: name + ": skew unknown: " + plugin.Clean(s.Err.Error(), 0),
			Perf:    []plugin.Perf{perf},
		}
	}
	v := s.Skew.Seconds()
	perf.Value = v
	r := plugin.Result{
		State:   p.Skew.State(math.Abs(v)),
		Summary: name + ": skew " + signed(v) + "s" + suffix(p.Skew.Describe(math.Abs(v))),
		Perf:    []plugin.Perf{perf},
	}
	if p.Verbose > 0 {
		r.Long = []string{fmt.Sprintf("peer clock read over SSH, round trip %ss (the skew is within ±%ss)", seconds(s.RTT), seconds(s.RTT/2))}
	}
	return r
}
