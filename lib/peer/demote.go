package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

// demoteServiceTimeout bounds stopping one PBX service on the old master;
// the whole command stays within MaxCommandTime.
const demoteServiceTimeout = 8 * time.Second

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
}

// demote is the fencing step of the other node's promote. It looks before
// it acts, so a second `demote` is harmless. A failed service stop is
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
	if cfg.VIP.Address != "" {
		prefix, err := netip.ParsePrefix(cfg.VIP.Address)
		if err != nil {
			return r, err
		}
		if err := demoteDelVIP(cfg.VIP.Interface, prefix); err != nil {
			return r, fmt.Errorf("releasing the VIP: %w", err)
		}
		r.VIPReleased = true
	}
	for _, svc := range cfg.Services {
		if len(svc.Stop) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, demoteServiceTimeout)
		err := demoteRun(ctx, svc.Stop)
		cancel()
		if err != nil {
			r.Failed = append(r.Failed, svc.Name+": "+plugin.Clean(err.Error(), 200))
		} else {
			r.Stopped = append(r.Stopped, svc.Name)
		}
	}
	st, err := cluster.ReadState(cfg.StateFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if st.Node == "" {
		st.Node = self.Name
	}
	if st.Role != cluster.Standby {
		st.Role, st.Since, st.Reason = cluster.Standby, time.Now().UTC(), "demoted by the peer's promote"
		if err := cluster.WriteState(cfg.StateFile, st); err != nil {
			return r, err
		}
	}
	r.Role, r.Epoch = st.Role, st.Epoch
	return r, nil
}

// The side effects of demote, replaced by tests.
var (
	demoteDelVIP = cluster.DelVIP
	demoteRun    = runBounded
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
	r.Node, r.Role = plugin.Clean(r.Node, 0), plugin.Clean(r.Role, 0)
	for i := range r.Failed {
		r.Failed[i] = plugin.Clean(r.Failed[i], 0)
	}
	if err == nil && r.Node != c.node {
		err = fmt.Errorf("peer command demote: the node at %s says it is %q, cluster.toml names it %q", c.addr, r.Node, c.node)
	}
	return r, err
}
