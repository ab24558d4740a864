package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
)

// check_pbx_cluster on node1 (the master) through split brains made by
// hand: the VIP bound on node2 as well (found by ARP), the VIP gone from
// node1, node2's state file claiming master, a peer at a higher epoch, a
// broken state file, and the cluster link cut. The lab is reset after each.
func TestCluster(t *testing.T) {
	l := useLab(t)
	const name = "check_pbx_cluster"
	run := func(t *testing.T, host string, args ...string) Run {
		t.Helper()
		return runIn(t, l, host, append([]string{name, "--config", l.ConfigPath(host)}, args...)...)
	}
	do := func(t *testing.T, host string, argv ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := l.ExecContext(ctx, host, argv...); err != nil {
			t.Fatalf("%s: %v: %v: %s", host, argv, err, out)
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
	setState := func(t *testing.T, node, role string, epoch uint64) {
		t.Helper()
		st := cluster.State{Node: node, Role: role, Epoch: epoch, Since: time.Now().UTC(), Reason: "test: " + t.Name()}
		if err := cluster.WriteState(l.StatePath(node), st); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("healthy", func(t *testing.T) {
		r := run(t, lab.Node1)
		expect(t, r, 0, "PBX_CLUSTER OK - node1 master at epoch 1, VIP 192.0.2.10 on tel0, no other ARP answer, peer node2 slave at epoch 1 | epoch=1;;;0 peer_epoch=1;;;0 peer_time=")
		expect(t, run(t, lab.Node2), 0, "PBX_CLUSTER OK - skipped: node is slave (applies to master)")
	})

	t.Run("VIP also on node2: split brain by ARP", func(t *testing.T) {
		defer reset(t)
		out, err := l.Exec(lab.Node2, "cat", "/sys/class/net/"+lab.TelIface+"/address")
		if err != nil {
			t.Fatalf("node2's MAC: %v: %s", err, out)
		}
		mac := strings.TrimSpace(string(out))
		do(t, lab.Node2, "ip", "addr", "add", lab.VIPPrefix, "dev", lab.TelIface)
		r := run(t, lab.Node1)
		// The ARP probe names node2's MAC: that text comes from ARP alone.
		expect(t, r, 2, "PBX_CLUSTER CRITICAL - split brain: "+mac+" also answers ARP for VIP 192.0.2.10")
	})

	t.Run("VIP missing on node1", func(t *testing.T) {
		defer reset(t)
		do(t, lab.Node1, "ip", "addr", "del", lab.VIPPrefix, "dev", lab.TelIface)
		r := run(t, lab.Node1)
		expect(t, r, 2, "PBX_CLUSTER CRITICAL - VIP 192.0.2.10 not bound on tel0: phones and gateways cannot reach this master |")
	})

	t.Run("node2's state says master: split brain", func(t *testing.T) {
		defer reset(t)
		setState(t, lab.Node2, cluster.Master, 1)
		r := run(t, lab.Node1)
		expect(t, r, 2, "PBX_CLUSTER CRITICAL - split brain: peer node2 is also master at the same epoch 1 | epoch=1;;;0 peer_epoch=1;;;0")
		setState(t, lab.Node2, cluster.Master, 2)
		r = run(t, lab.Node1)
		expect(t, r, 2, "PBX_CLUSTER CRITICAL - split brain: peer node2 is also master, at epoch 2 above ours (1): this node must yield | epoch=1;;;0 peer_epoch=2;;;0")
	})

	t.Run("node2 at a higher epoch: node1 must yield", func(t *testing.T) {
		defer reset(t)
		setState(t, lab.Node2, cluster.Slave, 3)
		expect(t, run(t, lab.Node1), 2, "PBX_CLUSTER CRITICAL - peer node2 is slave at epoch 3, above ours (1): this node's mastership is stale and must yield")
	})

	t.Run("node2 standby: no redundancy", func(t *testing.T) {
		defer reset(t)
		setState(t, lab.Node2, cluster.Standby, 1)
		expect(t, run(t, lab.Node1), 1, "PBX_CLUSTER WARNING - peer node2 is standby at epoch 1: no redundancy until it rejoins")
	})

	t.Run("cluster link down: peer unreachable", func(t *testing.T) {
		defer reset(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Fault(ctx, "link-down", lab.Node2, "clu"); err != nil {
			t.Fatal(err)
		}
		r := run(t, lab.Node1)
		expect(t, r, 1, "PBX_CLUSTER WARNING - peer node2 unreachable over SSH: ")
		if !strings.Contains(r.First, "peer_epoch=U") {
			t.Fatalf("peer_epoch is not U: %q", r.First)
		}
	})

	// No failover on a broken file: UNKNOWN, which the event handler
	// ignores, whatever --role.
	t.Run("broken state file", func(t *testing.T) {
		defer reset(t)
		if err := os.WriteFile(l.StatePath(lab.Node1), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		expect(t, run(t, lab.Node1), 3, "PBX_CLUSTER UNKNOWN - state file "+l.StatePath(lab.Node1)+" is not valid JSON")
		expect(t, run(t, lab.Node1, "--role", "any"), 3, "PBX_CLUSTER UNKNOWN - cannot tell this node's role: state file ")
		if err := os.Remove(l.StatePath(lab.Node1)); err != nil {
			t.Fatal(err)
		}
		expect(t, run(t, lab.Node1), 3, "PBX_CLUSTER UNKNOWN - cannot tell this node's role: no state file")
	})
}
