package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/probe"
	"pbxha/testharness/lab"
)

// lib/peer against the lab's real sshd and the built pbxha-peer, which each
// node's authorized_keys pins the cluster key to: node1 and node2 ask each
// other over the cluster network.
func TestPeer(t *testing.T) {
	l := useLab(t)
	ctxT := func(t *testing.T, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	// dialFrom connects from node's namespace to the other node, as the
	// checks running on node do.
	dialFrom := func(t *testing.T, node string, opts ...peer.Option) *peer.Client {
		t.Helper()
		cfg, err := config.Load(l.ConfigPath(node), true)
		if err != nil {
			t.Fatal(err)
		}
		c, err := peer.Dial(ctxT(t, 10*time.Second), cfg, append(opts, peer.WithDialer(lab.Dialer(node)))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("state both ways", func(t *testing.T) {
		for _, tc := range []struct {
			from, to string
			role     string
			vip      bool
		}{
			{lab.Node1, lab.Node2, cluster.Slave, false},
			{lab.Node2, lab.Node1, cluster.Master, true},
		} {
			c := dialFrom(t, tc.from)
			r, err := c.State(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatalf("%s asks %s: %v", tc.from, tc.to, err)
			}
			// vip_bound is read by pbxha-peer inside the peer's namespace:
			// it tells the nodes apart.
			if r.Node != tc.to || r.State.Role != tc.role || r.State.Epoch != 1 || r.VIPBound == nil || *r.VIPBound != tc.vip || r.VIP != lab.VIPPrefix {
				t.Fatalf("%s asks %s: %+v state %+v", tc.from, tc.to, r, r.State)
			}
		}
	})

	// The checks' key (ssh.check_key_file, what the plugins run as nagios
	// read): the real sshd and pbxha-peer --read-only answer state and
	// refuse demote and maintenance; nothing changes on the peer.
	t.Run("checks' key is read-only", func(t *testing.T) {
		c := dialFrom(t, lab.Node2, peer.ReadOnly())
		if r, err := c.State(ctxT(t, 10*time.Second)); err != nil || r.State.Role != cluster.Master {
			t.Fatalf("state with the checks' key: %+v %v", r, err)
		}
		_, err := c.Demote(ctxT(t, 10*time.Second))
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("demote with the checks' key: %v; want refused as read-only", err)
		}
		c = dialFrom(t, lab.Node2, peer.ReadOnly())
		if _, err := c.MaintenanceOn(ctxT(t, 10*time.Second), time.Minute); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("maintenance-on with the checks' key: %v; want refused as read-only", err)
		}
		if st, err := cluster.ReadState(l.StatePath(lab.Node1)); err != nil || st.Role != cluster.Master {
			t.Fatalf("node1 after the refused demote: %+v %v", st, err)
		}
		if !foVIPOn(t, l, lab.Node1) {
			t.Fatal("node1 lost the VIP after a refused demote")
		}
	})

	t.Run("version, time and probe", func(t *testing.T) {
		c := dialFrom(t, lab.Node2)
		v, err := c.Version(ctxT(t, 10*time.Second))
		if err != nil || len(v.Commands) == 0 {
			t.Fatalf("version: %+v %v", v, err)
		}
		skew, rtt, err := c.Skew(ctxT(t, 10*time.Second))
		// Both nodes read the one kernel clock: only the measurement's
		// own error is left.
		if err != nil || skew.Abs() > rtt/2+time.Millisecond || rtt > time.Second {
			t.Fatalf("skew %v rtt %v: %v", skew, rtt, err)
		}
		// node1 probes infra and an unused telephony address for node2.
		targets := []netip.Addr{netip.MustParseAddr(lab.InfraTelIP), netip.MustParseAddr("192.0.2.99")}
		rs, err := c.Probe(ctxT(t, 10*time.Second), targets, probe.Options{Method: probe.ICMP})
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Reachable || rs[0].Received == 0 || rs[1].Reachable {
			t.Fatalf("probe from node1: %+v", rs)
		}
	})

	t.Run("the cluster key runs pbxha-peer and nothing else", func(t *testing.T) {
		key, err := os.ReadFile(l.Creds().SSHKey)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		hk, err := knownhosts.New(l.KnownHosts())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := lab.DialIn(ctxT(t, 10*time.Second), lab.Node1, "tcp", "198.51.100.2:22")
		if err != nil {
			t.Fatal(err)
		}
		cc, chans, reqs, err := ssh.NewClientConn(conn, "198.51.100.2:22", &ssh.ClientConfig{
			User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk,
			HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, Timeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		client := ssh.NewClient(cc, chans, reqs)
		defer client.Close()
		for _, cmd := range []string{"id", "ip -o -4 addr show dev clu0", "state; id", "state $(id)"} {
			s, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Output(cmd)
			s.Close()
			var ee *ssh.ExitError
			var reply struct{ Error string }
			if !errors.As(err, &ee) || ee.ExitStatus() != peer.ExitUsage || json.Unmarshal(out, &reply) != nil ||
				!strings.HasPrefix(reply.Error, "invalid command: ") {
				t.Errorf("%q ran: %v: %q", cmd, err, out)
			}
		}
	})

	t.Run("check_pbx_time --peer both ways", func(t *testing.T) {
		for _, node := range lab.Nodes {
			r := runIn(t, l, node, "check_pbx_time", "--config", l.ConfigPath(node), "--peer", "--role", "any")
			expect(t, r, 0, "PBX_TIME OK - "+lab.InfraTelIP+": offset ")
			other := lab.Node2
			if node == lab.Node2 {
				other = lab.Node1
			}
			if !strings.Contains(r.First, ", peer "+other+": skew ") || !strings.Contains(r.First, " peer_skew=") ||
				!strings.Contains(r.Out, "\\_ [OK] peer "+other+": skew ") {
				t.Fatalf("on %s: no peer skew:\n%s", node, r.Out)
			}
			t.Logf("%s: %s", node, r.Out)
		}
	})

	t.Run("cluster link down: skew UNKNOWN, not CRITICAL", func(t *testing.T) {
		ctx := ctxT(t, time.Minute)
		if err := l.Fault(ctx, "link-down", lab.Node2, "clu"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.Fault(context.Background(), "link-up", lab.Node2, "clu"); err != nil {
				t.Errorf("link-up: %v", err)
			}
		}()
		start := time.Now()
		r := runIn(t, l, lab.Node1, "check_pbx_time", "--config", l.ConfigPath(lab.Node1), "--peer", "--role", "any")
		expect(t, r, 3, "PBX_TIME UNKNOWN - peer node2: skew unknown: ssh to node2 (198.51.100.2:22): ")
		if !strings.Contains(r.First, "peer_skew=U;0.5;1") || !strings.Contains(r.Out, "\\_ [OK] "+lab.InfraTelIP+": offset ") {
			t.Fatalf("%s", r.Out)
		}
		// connect_timeout (3 s in the lab) bounds it, well before -t.
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("took %v", d)
		}
		t.Logf("%s", r.Out)
	})
}
