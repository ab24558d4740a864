package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// check_pbx_master_alive on node2 (the slave) against node1 (the master)
// through the lab's faults: each path cut alone is a WARNING naming it,
// both cut is CRITICAL within the probe budget, and a frozen node1 — whose
// kernel still answers ICMP and completes TCP handshakes — is only dead to
// --method banner.
func TestMasterAlive(t *testing.T) {
	l := useLab(t)
	const (
		name   = "check_pbx_master_alive"
		banner = "--port=clu:22,tel:5038" // sshd on the cluster IP, the AMI on the telephony IP
	)
	run := func(t *testing.T, host string, args ...string) (Run, time.Duration) {
		t.Helper()
		start := time.Now()
		r := runIn(t, l, host, append([]string{name, "--config", l.ConfigPath(host)}, args...)...)
		return r, time.Since(start)
	}
	fault := func(t *testing.T, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Fault(ctx, args...); err != nil {
			t.Fatalf("fault %v: %v", args, err)
		}
	}
	// healthy waits until node1 answers on both paths again after a fault
	// was undone (ARP and the bridge relearn in well under a second).
	healthy := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := lab.WaitFor(ctx, "node1 reachable from node2 again", func() error {
			if r, _ := run(t, lab.Node2); r.Code != 0 {
				return errors.New(r.First)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	const okLine = "PBX_MASTER_ALIVE OK - master node1 reachable on telephony 192.0.2.11 and cluster 198.51.100.1 | tel_rta="

	t.Run("healthy", func(t *testing.T) {
		r, _ := run(t, lab.Node2)
		expect(t, r, 0, okLine)
		if strings.Contains(r.First, "_rta=U") || !strings.Contains(r.First, "tel_pl=0%") || !strings.Contains(r.First, "clu_pl=0%") {
			t.Fatalf("perfdata of a healthy lab: %q", r.First)
		}
		for _, args := range [][]string{{"--method", "tcp", "--port", "22"}, {"--method", "both", "--port", "22"}, {"--method", "banner", banner}} {
			r, _ := run(t, lab.Node2, args...)
			expect(t, r, 0, okLine)
		}
	})
	t.Run("skipped on the master", func(t *testing.T) {
		r, _ := run(t, lab.Node1)
		expect(t, r, 0, "PBX_MASTER_ALIVE OK - skipped: node is master (applies to slave)")
	})
	t.Run("telephony down", func(t *testing.T) {
		fault(t, "link-down", lab.Node1, "tel")
		defer healthy(t)
		defer fault(t, "link-up", lab.Node1, "tel")
		r, _ := run(t, lab.Node2)
		expect(t, r, 1, "PBX_MASTER_ALIVE WARNING - master node1 unreachable on telephony 192.0.2.11, reachable on cluster 198.51.100.1: telephony path down | tel_rta=U;;;0 tel_pl=100%")
	})
	t.Run("cluster down", func(t *testing.T) {
		fault(t, "link-down", lab.Node1, "clu")
		defer healthy(t)
		defer fault(t, "link-up", lab.Node1, "clu")
		r, _ := run(t, lab.Node2)
		expect(t, r, 1, "PBX_MASTER_ALIVE WARNING - master node1 unreachable on cluster 198.51.100.1")
		if !strings.Contains(r.First, "reachable on telephony 192.0.2.11: cluster path down |") || !strings.Contains(r.First, "clu_rta=U;;;0 clu_pl=100%") {
			t.Fatalf("%q", r.First)
		}
	})
	t.Run("both down", func(t *testing.T) {
		fault(t, "link-down", lab.Node1, "all")
		defer healthy(t)
		defer fault(t, "link-up", lab.Node1, "all")
		const crit = "PBX_MASTER_ALIVE CRITICAL - master node1 unreachable on telephony 192.0.2.11 and cluster 198.51.100.1 | tel_rta=U;;;0 tel_pl=100%;;;0;100 clu_rta=U;;;0 clu_pl=100%;;;0;100"
		r, took := run(t, lab.Node2)
		expect(t, r, 2, crit)
		t.Logf("dead master decided in %v (process start to exit, inside the namespace)", took)
		// The default budget is 0.4 s; a second leaves room for a loaded
		// machine but not for a probe that waits on something it should not.
		if took > time.Second {
			t.Fatalf("a dead master took %v to decide", took)
		}
		r, _ = run(t, lab.Node2, "--method", "both", "--port", "22")
		expect(t, r, 2, crit)
	})
	t.Run("frozen", func(t *testing.T) {
		fault(t, "freeze", lab.Node1)
		defer healthy(t)
		defer fault(t, "thaw", lab.Node1)
		// The kernel of a frozen node answers echo requests and completes
		// TCP handshakes into the stopped sshd's backlog: to ICMP and TCP
		// it is alive. That is the truth this asserts.
		for _, args := range [][]string{nil, {"--method", "tcp", "--port", "22"}} {
			r, _ := run(t, lab.Node2, args...)
			expect(t, r, 0, okLine)
		}
		// Only an application's greeting tells a hung master.
		r, took := run(t, lab.Node2, "--method", "banner", banner)
		expect(t, r, 2, "PBX_MASTER_ALIVE CRITICAL - master node1 unreachable on telephony 192.0.2.11 port 5038 and cluster 198.51.100.1 port 22: it accepts connections but does not greet (hung?) |")
		if took > time.Second {
			t.Fatalf("a hung master took %v to decide", took)
		}
	})
}
