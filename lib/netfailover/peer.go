package netfailover

import (
	"context"
	"net/netip"

	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/probe"
)

// askMaster has the master probe the targets from its side over SSH
// (lib/peer), with the same options as ours.
func askMaster(ctx context.Context, cfg *config.Config, targets []netip.Addr, o probe.Options) ([]probe.Result, error) {
	c, err := peer.Dial(ctx, cfg, peer.ReadOnly())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Probe(ctx, targets, o)
}
