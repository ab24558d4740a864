package peer

import (
	"context"
	"fmt"

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
}

// DemoteFunc runs this node's demote for the peer that is promoting
// itself (its fencing step): databases read-only or stopped, VIP released,
// services stopped, role standby with the epoch kept. pbxha-peer's main
// sets it to the event handler's demote, so that it is the same code the
// handler runs; this package does not link the failover machinery (the
// checks that use it stay small). nil: this build cannot demote.
var DemoteFunc func(ctx context.Context, cfg *config.Config) (*DemoteReply, error)

func (s *Server) demote(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	if cfg.Self() == nil {
		return nil, fmt.Errorf("%s: cannot tell which node this is (set node)", cfg.Path())
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

// Demote asks the peer to give up master: release the VIP, stop the PBX
// services, become standby.
func (c *Client) Demote(ctx context.Context) (DemoteReply, error) {
	var r DemoteReply
	req, err := NewRequest("demote")
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	r.Node, r.Role, r.Databases = plugin.Clean(r.Node, 0), plugin.Clean(r.Role, 0), plugin.Clean(r.Databases, 0)
	for i := range r.Failed {
		r.Failed[i] = plugin.Clean(r.Failed[i], 0)
	}
	if err == nil && r.Node != c.node {
		err = fmt.Errorf("peer command demote: the node at %s says it is %q, cluster.toml names it %q", c.addr, r.Node, c.node)
	}
	return r, err
}
