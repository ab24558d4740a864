package eventhandler

import (
	"context"
	"fmt"
	"strings"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/failover"
	"pbxha/lib/peer"
	"pbxha/lib/plugin"
	"pbxha/lib/services"
)

// peerDemoteOps are the side effects of PeerDemote (zero: the real thing);
// tests replace them.
var peerDemoteOps failover.Ops

// PeerDemote is peer.DemoteFunc: the fencing step of the other node's
// promote: failover.DemoteFenced (VIP released first, then databases
// read-only or stopped, services stopped, role standby with the epoch
// kept). A failed database or service step is reported but does not keep
// the VIP: the address is what must move.
func PeerDemote(ctx context.Context, cfg *config.Config) (*peer.DemoteReply, error) {
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	r := &peer.DemoteReply{Node: cfg.Self().Name}
	ops := peerDemoteOps
	ops.Logf = log.Logf
	log.Logf("demote asked by %s (its promote's fence)", peerName(cfg))
	rep, _ := failover.DemoteFenced(ctx, cfg, "demoted by "+peerName(cfg)+"'s promote", ops)
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
	r.Role, r.Epoch = cluster.Standby, rep.Epoch
	return r, nil
}

// PeerServices is peer.ServicesFunc.
func PeerServices(ctx context.Context, cfg *config.Config) ([]peer.Running, error) {
	run, err := services.RunningNow(ctx, cfg, "/proc")
	out := make([]peer.Running, len(run))
	for i, s := range run {
		out[i] = peer.Running{Name: s.Name, Procs: s.Procs, OK: s.OK}
	}
	return out, err
}
