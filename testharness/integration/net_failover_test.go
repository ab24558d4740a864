package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// check_pbx_net_failover on node2 (the slave), which asks node1 over SSH
// to probe infra's telephony address too: node1's telephony link cut is a
// failover (CRITICAL); infra's cut is the telephony network down for both,
// where a failover would not help (WARNING, never CRITICAL); the cluster
// link cut leaves the master unasked (UNKNOWN).
func TestNetFailover(t *testing.T) {
	l := useLab(t)
	const name = "check_pbx_net_failover"
	run := func(t *testing.T, host string, args ...string) Run {
		t.Helper()
		return runIn(t, l, host, append([]string{name, "--config", l.ConfigPath(host)}, args...)...)
	}
	fault := func(t *testing.T, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Fault(ctx, args...); err != nil {
			t.Fatalf("fault %v: %v", args, err)
		}
	}
	reset := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := l.Reset(ctx); err != nil {
			t.Fatalf("reset: %v", err)
		}
	}
	perfHas := func(t *testing.T, r Run, items ...string) {
		t.Helper()
		for _, it := range items {
			if !strings.Contains(r.First, " "+it) {
				t.Fatalf("perfdata lacks %q: %q", it, r.First)
			}
		}
	}

	t.Run("healthy", func(t *testing.T) {
		r := run(t, lab.Node2)
		expect(t, r, 0, "PBX_NET_FAILOVER OK - master node1 and slave node2 reach 192.0.2.1 | master_reachable=1;;;0;1 master_rtt=")
		perfHas(t, r, "slave_reachable=1;;;0;1")
		expect(t, run(t, lab.Node1), 0, "PBX_NET_FAILOVER OK - skipped: node is master (applies to slave)")
		// Targets from -H; the node addresses answer from both sides.
		r = run(t, lab.Node2, "-H", lab.InfraTelIP, "-H", "192.0.2.11", "-H", "192.0.2.12", "--min-targets", "3")
		expect(t, r, 0, "PBX_NET_FAILOVER OK - master node1 reaches 3/3, slave node2 3/3 telephony targets")
	})

	t.Run("node1's telephony link down: failover", func(t *testing.T) {
		defer reset(t)
		fault(t, "link-down", lab.Node1, "tel")
		r := run(t, lab.Node2)
		expect(t, r, 2, "PBX_NET_FAILOVER CRITICAL - master node1 reaches 0/1 telephony targets, slave node2 reaches 1/1: the master lost the telephony network (192.0.2.1 unreachable")
		perfHas(t, r, "master_reachable=0;;;0;1", "master_rtt=U", "slave_reachable=1;;;0;1")
	})

	t.Run("infra's telephony link down: no failover", func(t *testing.T) {
		defer reset(t)
		fault(t, "link-down", lab.Infra, "tel")
		for _, args := range [][]string{nil, {"--method", "both", "--port", "5060"}} {
			r := run(t, lab.Node2, args...)
			if r.Code == 2 {
				t.Fatalf("CRITICAL when the telephony network is down for both nodes: %q", r.First)
			}
			expect(t, r, 1, "PBX_NET_FAILOVER WARNING - telephony network down for both nodes: a failover would not help (master node1 reaches 0/1, slave node2 0/1)")
			perfHas(t, r, "master_reachable=0;;;0;1", "slave_reachable=0;;;0;1")
		}
	})

	t.Run("cluster link down: the master cannot be asked", func(t *testing.T) {
		defer reset(t)
		fault(t, "link-down", lab.Node2, "clu")
		r := run(t, lab.Node2)
		expect(t, r, 3, "PBX_NET_FAILOVER UNKNOWN - cannot ask master node1 to probe the telephony targets: ")
		perfHas(t, r, "master_reachable=U", "slave_reachable=1;;;0;1")
	})
}
