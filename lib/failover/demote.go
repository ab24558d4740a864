package failover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

// DemoteServiceTimeout bounds stopping one PBX service.
const DemoteServiceTimeout = 8 * time.Second

func dbPlan(cfg *config.Config, what string) string {
	var engines []string
	if cfg.MySQL != nil {
		engines = append(engines, "MariaDB/MySQL")
	}
	if cfg.PgSQL != nil {
		engines = append(engines, "PostgreSQL")
	}
	if len(engines) == 0 {
		return "databases: none configured"
	}
	return "databases (" + strings.Join(engines, ", ") + "): " + what
}

// DemotePlan lists the steps of a demote, for --dry-run.
func DemotePlan(cfg *config.Config) []string {
	p := []string{dbPlan(cfg, "read_only = ON (MariaDB/MySQL), stop the server (PostgreSQL), before the VIP goes")}
	if cfg.VIP.Address != "" {
		p = append(p, fmt.Sprintf("vip: release %s from %s", cfg.VIP.Address, cfg.VIP.Interface))
	}
	for _, s := range slices.Backward(cfg.Services) {
		if len(s.Stop) > 0 {
			p = append(p, fmt.Sprintf("service %s: %s (deadline %s)", s.Name, strings.Join(s.Stop, " "), DemoteServiceTimeout))
		}
	}
	return append(p, fmt.Sprintf("state: write role=standby, epoch kept, to %s", cfg.StateFile))
}

// Demote makes this node give up master: the databases stop taking
// writes first (so no late write lands here), then the VIP goes, then the
// PBX services stop (in reverse order), then role=standby with the epoch
// kept. Every step is tried even when one before it failed — the VIP must
// move whatever else goes wrong — and each looks before it acts, so a
// rerun is harmless. The error joins the failed steps.
func Demote(ctx context.Context, cfg *config.Config, reason string, ops Ops) (*Report, error) {
	return demote(ctx, cfg, reason, ops, false)
}

// DemoteFenced is Demote at the request of the peer's promote (its fence):
// the peer takes, or has taken, the VIP, so every moment this node keeps
// it too is split brain: the VIP goes first, then the databases (a
// PostgreSQL stop takes a while), services and state as in Demote.
func DemoteFenced(ctx context.Context, cfg *config.Config, reason string, ops Ops) (*Report, error) {
	return demote(ctx, cfg, reason, ops, true)
}

func demote(ctx context.Context, cfg *config.Config, reason string, ops Ops, vipFirst bool) (*Report, error) {
	ops.defaults(cfg)
	r := &Report{Start: ops.Now()}
	var errs []error
	step := func(name string, timeout time.Duration, fn func(ctx context.Context) (string, error)) {
		if err := r.run(ctx, &ops, name, timeout, fn); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", name, err))
		}
	}
	if !vipFirst {
		step("databases", DBTimeout, ops.DemoteDBs)
	}
	if cfg.VIP.Address != "" {
		step("vip", VIPTimeout, func(ctx context.Context) (string, error) {
			vip, err := netip.ParsePrefix(cfg.VIP.Address)
			if err != nil {
				return "", fmt.Errorf("vip.address %q: %v", cfg.VIP.Address, err)
			}
			if err := ops.DelVIP(cfg.VIP.Interface, vip); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s released from %s", vip, cfg.VIP.Interface), nil
		})
		r.VIPAt = ops.Now().Sub(r.Start)
	}
	if vipFirst {
		step("databases", DBTimeout, ops.DemoteDBs)
	}
	for _, s := range slices.Backward(cfg.Services) {
		if len(s.Stop) == 0 {
			continue
		}
		step("service", DemoteServiceTimeout, func(ctx context.Context) (string, error) {
			if err := ops.RunCommand(ctx, s.Stop); err != nil {
				return "", fmt.Errorf("stopping %s: %w", s.Name, err)
			}
			return s.Name + " stopped", nil
		})
	}
	r.ServicesAt = ops.Now().Sub(r.Start)
	step("state", StateTimeout, func(ctx context.Context) (string, error) {
		st, err := ops.ReadState(cfg.StateFile)
		if err != nil && !isNotExist(err) {
			return "", err
		}
		if st.Node == "" && cfg.Self() != nil {
			st.Node = cfg.Self().Name
		}
		if st.Role == cluster.Standby {
			r.Epoch = st.Epoch
			return fmt.Sprintf("already standby at epoch %d", st.Epoch), nil
		}
		st.Role, st.Since, st.Reason = cluster.Standby, ops.Now().UTC(), reason
		if err := ops.WriteState(cfg.StateFile, st); err != nil {
			return "", err
		}
		r.Epoch = st.Epoch
		return fmt.Sprintf("role=standby epoch=%d", st.Epoch), nil
	})
	return r, errors.Join(errs...)
}

// RejoinPlan lists the steps of a rejoin, for --dry-run.
func RejoinPlan(cfg *config.Config, master string) []string {
	return []string{
		dbPlan(cfg, "replica of "+master+" (GTID for MariaDB/MySQL, refusing errant transactions; pg_rewind or pg_basebackup for PostgreSQL), wait until it streams"),
		fmt.Sprintf("state: write role=slave at %s's epoch to %s", master, cfg.StateFile),
	}
}

// Rejoin makes this standby node the slave of newMaster, whose epoch is
// masterEpoch: its databases follow the new master's, then role=slave at
// that epoch. The caller has checked that this node does not hold the VIP
// and that the peer is master.
func Rejoin(ctx context.Context, cfg *config.Config, newMaster config.Node, masterEpoch uint64, ops Ops) (*Report, error) {
	ops.defaults(cfg)
	r := &Report{Start: ops.Now()}
	step := func(name string, timeout time.Duration, fn func(ctx context.Context) (string, error)) error {
		return r.run(ctx, &ops, name, timeout, fn)
	}
	if err := step("databases", RejoinDBTimeout, func(ctx context.Context) (string, error) {
		return ops.RejoinDBs(ctx, newMaster)
	}); err != nil {
		return r, fmt.Errorf("step databases: %w", err)
	}
	err := step("state", StateTimeout, func(ctx context.Context) (string, error) {
		st, err := ops.ReadState(cfg.StateFile)
		if err != nil && !isNotExist(err) {
			return "", err
		}
		if st.Node == "" && cfg.Self() != nil {
			st.Node = cfg.Self().Name
		}
		st.Role, st.Epoch, st.Since, st.Reason = cluster.Slave, max(st.Epoch, masterEpoch), ops.Now().UTC(), "rejoined "+newMaster.Name
		if err := ops.WriteState(cfg.StateFile, st); err != nil {
			return "", err
		}
		r.Epoch = st.Epoch
		return fmt.Sprintf("role=slave epoch=%d", st.Epoch), nil
	})
	if err != nil {
		return r, fmt.Errorf("step state: %w", err)
	}
	return r, nil
}

// RejoinDBTimeout bounds the database part of a rejoin (a pg_basebackup
// of a large database takes a while; rejoin is run by the admin, not by
// Icinga).
const RejoinDBTimeout = 15 * time.Minute
