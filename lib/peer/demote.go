package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"pbxha/lib/cluster"

	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// DemoteReply is what `demote` answers: the node released the VIP, stopped
// the PBX services and wrote role=standby keeping its epoch.
type DemoteReply struct {
	Status
	Node        string   `json:"node"`
	Epoch       uint64   `json:"epoch"`
	Role        string   `json:"role"`
	VIPReleased bool     `json:"vip_released"`
	Stopped     []string `json:"stopped,omitempty"`
	Failed      []string `json:"failed,omitempty"`
	Databases   string   `json:"databases,omitempty"`
	// Skipped (demote-below): why nothing was done; the node's role and
	// epoch are as they were.
	Skipped string `json:"skipped,omitempty"`
}

// MaxEpoch bounds the EPOCH word of demote-below.
const MaxEpoch = 1_000_000_000

// DemoteFunc runs this node's demote for the peer that is promoting
// itself (its fencing step): databases read-only or stopped, VIP released,
// services stopped, role standby with the epoch kept. pbxha-peer's main
// sets it to the event handler's demote, so that it is the same code the
// handler runs; this package does not link the failover machinery (the
// checks that use it stay small). nil: this build cannot demote.
var DemoteFunc func(ctx context.Context, cfg *config.Config) (*DemoteReply, error)

func (s *Server) demote(c call) (replier, error) {
	cfg, _, err := s.selfConfig()
	if err != nil {
		return nil, err
	}
	if DemoteFunc == nil {
		return nil, fmt.Errorf("this pbxha-peer cannot demote (built without the event handler)")
	}
	r, err := DemoteFunc(c.ctx, cfg)
	if r == nil {
		r = &DemoteReply{Node: cfg.Self().Name}
	}
	return r, err
}

// demoteBelow demotes this node only while it is a master below the
// given epoch (a stale master): the fence and its watch ask and act in one
// round trip, and a node that stepped down meanwhile, or was promoted
// since, is left as it is.
func (s *Server) demoteBelow(c call) (replier, error) {
	cfg, self, err := s.selfConfig()
	if err != nil {
		return nil, err
	}
	below := uint64(c.req.Args[0].(int))
	st, err := cluster.ReadState(cfg.StateFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if st.Role != cluster.Master || st.Epoch >= below {
		role := st.Role
		if role == "" {
			role = "without a role"
		}
		return &DemoteReply{Node: self.Name, Role: st.Role, Epoch: st.Epoch,
			Skipped: fmt.Sprintf("%s is %s at epoch %d, not a master below epoch %d: nothing to demote", self.Name, role, st.Epoch, below)}, nil
	}
	return s.demote(c)
}

// Demote asks the peer to give up master: release the VIP, stop the PBX
// services, become standby.
func (c *Client) Demote(ctx context.Context) (DemoteReply, error) {
	req, err := NewRequest("demote")
	if err != nil {
		return DemoteReply{}, err
	}
	return c.demoteReq(ctx, req)
}

// DemoteBelow asks the peer to give up master only if it is a master
// below epoch; otherwise the reply's Skipped says what it is.
func (c *Client) DemoteBelow(ctx context.Context, epoch uint64) (DemoteReply, error) {
	if epoch > MaxEpoch {
		return DemoteReply{}, fmt.Errorf("demote-below: epoch %d above %d", epoch, MaxEpoch)
	}
	req, err := NewRequest("demote-below", int(epoch))
	if err != nil {
		return DemoteReply{}, err
	}
	return c.demoteReq(ctx, req)
}

func (c *Client) demoteReq(ctx context.Context, req Request) (DemoteReply, error) {
	var r DemoteReply
	_, _, err := c.run(ctx, req, &r, false)
	r.Node, r.Role, r.Databases, r.Skipped = plugin.Clean(r.Node, 0), plugin.Clean(r.Role, 0), plugin.Clean(r.Databases, 0), plugin.Clean(r.Skipped, 0)
	for i := range r.Failed {
		r.Failed[i] = plugin.Clean(r.Failed[i], 0)
	}
	if err == nil && r.Node != c.node {
		err = fmt.Errorf("peer command %s: the node at %s says it is %q, cluster.toml names it %q", req.Name, c.addr, r.Node, c.node)
	}
	return r, err
}
