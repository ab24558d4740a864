package peer

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/failover"
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

// demote is the fencing step of the other node's promote: the same
// failover.Demote the event handler runs (databases read-only or stopped,
// VIP released, services stopped, role standby with the epoch kept). It
// looks before it acts, so a second `demote` is harmless. A failed step is
// reported but does not keep the VIP: the address is what must move.
func (s *Server) demote(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	self := cfg.Self()
	if self == nil {
		return nil, fmt.Errorf("%s: cannot tell which node this is (set node)", cfg.Path())
	}
	r := &DemoteReply{Node: self.Name}
	ops := failover.Ops{DelVIP: demoteDelVIP, RunCommand: demoteRun}
	if demoteDBs != nil {
		ops.DemoteDBs = demoteDBs
	}
	rep, derr := failover.Demote(c.ctx, cfg, "demoted by the peer's promote", ops)
	var vipErr, stateErr error
	for _, st := range rep.Steps {
		switch st.Name {
		case "vip":
			vipErr = st.Err
		case "state":
			stateErr = st.Err
		case "service":
			if st.Err != nil {
				r.Failed = append(r.Failed, plugin.Clean(st.Err.Error(), 200))
			} else {
				r.Stopped = append(r.Stopped, strings.TrimSuffix(st.Result, " stopped"))
			}
		case "databases":
			r.Databases = plugin.Clean(st.Result, 300)
			if st.Err != nil {
				r.Failed = append(r.Failed, "databases: "+plugin.Clean(st.Err.Error(), 200))
			}
		}
	}
	r.VIPReleased = cfg.VIP.Address != "" && vipErr == nil
	switch {
	case vipErr != nil:
		return r, fmt.Errorf("releasing the VIP: %w", vipErr)
	case stateErr != nil:
		return r, stateErr
	}
	_ = derr // service and database failures are in r.Failed
	r.Role, r.Epoch = cluster.Standby, rep.Epoch
	return r, nil
}

// The side effects of demote, replaced by tests.
var (
	demoteDelVIP = cluster.DelVIP
	demoteRun    = runBounded
	demoteDBs    func(context.Context) (string, error) // nil: dbfailover.Demote
)

func runBounded(ctx context.Context, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", argv[0], err, strings.TrimSpace(string(out)))
	}
	return nil
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
