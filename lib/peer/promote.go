package peer

import (
	"context"
	"fmt"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// PromoteTime bounds `promote` on the remote end (fence, VIP, databases,
// services); longer than MaxCommandTime, shorter than the event command
// timeout of icinga-conf (2 min).
const PromoteTime = 90 * time.Second

// PromoteReasons are the words `promote` accepts: why the other node asks.
var PromoteReasons = []string{"handover", "switchover"}

// PromoteReply answers `promote`: the node's promote as it ran.
type PromoteReply struct {
	Status
	Node       string   `json:"node"`
	Role       string   `json:"role"`
	Epoch      uint64   `json:"epoch"`
	Steps      []string `json:"steps,omitempty"` // one line per step, as in the email
	VIPMS      float64  `json:"vip_ms"`
	ServicesMS float64  `json:"services_ms"`
	Refused    string   `json:"refused,omitempty"`
}

// PromoteFunc runs this node's promote for the peer that asks for it (the
// other half of its hand-over or switchover). pbxha-peer's main sets it to
// the event handler's promote, so the lock, the log and every step are the
// same as when Icinga runs the handler; nil here means this build cannot.
var PromoteFunc func(ctx context.Context, cfg *config.Config, reason string) (*PromoteReply, error)

func (s *Server) promote(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	if PromoteFunc == nil {
		return nil, fmt.Errorf("this pbxha-peer cannot promote (built without the event handler)")
	}
	return PromoteFunc(c.ctx, cfg, c.req.Args[0].(string))
}

// Promote asks the peer to become master: the second half of a hand-over
// (this node demoted itself after a local failure) or of a planned
// switchover. reason is one of PromoteReasons.
func (c *Client) Promote(ctx context.Context, reason string) (PromoteReply, error) {
	var r PromoteReply
	req, err := NewRequest("promote", reason)
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	r.Node, r.Role, r.Refused = plugin.Clean(r.Node, 0), plugin.Clean(r.Role, 0), plugin.Clean(r.Refused, 0)
	for i := range r.Steps {
		r.Steps[i] = plugin.Clean(r.Steps[i], 0)
	}
	return r, err
}

// MaintenanceReply answers `maintenance-on` and `maintenance-off`.
type MaintenanceReply struct {
	Status
	Node   string     `json:"node"`
	Active bool       `json:"active"`
	Until  *time.Time `json:"until,omitempty"`
}

// MaxMaintenance bounds what the peer accepts, in seconds (a day).
const MaxMaintenance = 24 * 3600

func (s *Server) maintenanceOn(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	m := cluster.Maintenance{Since: now.UTC(), Until: now.Add(time.Duration(c.req.Args[0].(int)) * time.Second).UTC(), By: otherName(cfg) + " (over SSH)"}
	if err := cluster.WriteMaintenance(cfg.StateFile, m); err != nil {
		return nil, err
	}
	return &MaintenanceReply{Node: selfName(cfg), Active: true, Until: &m.Until}, nil
}

func (s *Server) maintenanceOff(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	if _, err := cluster.ClearMaintenance(cfg.StateFile); err != nil {
		return nil, err
	}
	return &MaintenanceReply{Node: selfName(cfg)}, nil
}

// selfName is this node's name ("" when cfg cannot tell).
func selfName(cfg *config.Config) string {
	if n := cfg.Self(); n != nil {
		return n.Name
	}
	return ""
}

// otherName is the name of the node that asks: the peer.
func otherName(cfg *config.Config) string {
	if n := cfg.Peer(); n != nil {
		return n.Name
	}
	return "the peer"
}

// MaintenanceOn switches maintenance on at the peer for d.
func (c *Client) MaintenanceOn(ctx context.Context, d time.Duration) (MaintenanceReply, error) {
	var r MaintenanceReply
	secs := min(max(int(d/time.Second), 1), MaxMaintenance)
	req, err := NewRequest("maintenance-on", secs)
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	return r, err
}

// MaintenanceOff switches maintenance off at the peer.
func (c *Client) MaintenanceOff(ctx context.Context) (MaintenanceReply, error) {
	var r MaintenanceReply
	req, err := NewRequest("maintenance-off")
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	return r, err
}
