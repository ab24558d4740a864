package clustercheck

import (
	"context"

	"pbxha/lib/config"
	"pbxha/lib/peer"
)

// askPeer reads the peer's state over SSH (lib/peer). connected tells a
// peer that could not be reached from one that answered but could not say
// its state; vipBound is what the peer said about the VIP on its side, even
// when its state could not be read (nil: it did not say).
func askPeer(ctx context.Context, cfg *config.Config) (pv PeerView, connected bool, vipBound *bool, err error) {
	c, err := peer.Dial(ctx, cfg, peer.ReadOnly())
	if err != nil {
		return pv, false, nil, err
	}
	defer c.Close()
	r, err := c.State(ctx)
	if r.State != nil {
		pv = PeerView{Node: r.Node, Role: r.State.Role, Epoch: r.State.Epoch}
	}
	return pv, true, r.VIPBound, err
}
