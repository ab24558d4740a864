package integration

// The master's side of pbxha-eventhandler: the hand-over after a failure on
// the master, the planned switchover there and back, status, rejoin, the
// stale master that steps down, maintenance, and the lag gate.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
)

// eh runs pbxha-eventhandler in node with node's cluster.toml.
func eh(t *testing.T, l *lab.Lab, node string, args ...string) Run {
	t.Helper()
	argv := append([]string{"pbxha-eventhandler", args[0], "--config", l.ConfigPath(node)}, args[1:]...)
	r := runIn(t, l, node, argv...)
	t.Logf("%s: pbxha-eventhandler %s: exit %d\n%s", node, strings.Join(args, " "), r.Code, r.Out)
	return r
}

func handleOn(t *testing.T, l *lab.Lab, node, service string) Run {
	return eh(t, l, node, "handle", "--service", service, "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3",
		"--output", strings.ToUpper(service)+" CRITICAL - test")
}

func wantState(t *testing.T, l *lab.Lab, node, role string, epoch uint64) {
	t.Helper()
	st, err := cluster.ReadState(l.StatePath(node))
	if err != nil || st.Role != role || st.Epoch != epoch {
		t.Fatalf("%s state %+v %v; want %s epoch %d", node, st, err, role, epoch)
	}
}

// unfold joins folded header lines (RFC 5322 2.2.3), as a mail reader
// shows them.
func unfold(m string) string {
	m = strings.ReplaceAll(m, "\r\n", "\n")
	head, body, _ := strings.Cut(m, "\n\n")
	return strings.ReplaceAll(head, "\n ", " ") + "\n\n" + body
}

// wantMail waits for exactly one mail since since whose subject starts
// with subject and returns it.
func wantMail(t *testing.T, l *lab.Lab, since time.Time, subject string, body ...string) string {
	t.Helper()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := lab.WaitFor(ctx, "mail "+subject, func() error {
		got = got[:0]
		for _, m := range foMails(t, l, since) {
			m = unfold(m)
			if strings.Contains(m, "Subject: "+subject) {
				got = append(got, m)
			}
		}
		if len(got) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("%d mails with subject %q (%v); all since the start:\n%s", len(got), subject, err, strings.Join(foMails(t, l, since), "\n----\n"))
	}
	for _, w := range body {
		if !strings.Contains(got[0], w) {
			t.Errorf("the mail %q lacks %q:\n%s", subject, w, got[0])
		}
	}
	return got[0]
}

// primeARP makes infra talk to the VIP, so that it holds an ARP entry for
// it (the old master's MAC) that only the new master's gratuitous ARP can
// correct: a phone that called a minute ago is in that state.
func primeARP(t *testing.T, l *lab.Lab) {
	t.Helper()
	if r := runIn(t, l, lab.Infra, "check_pbx_sip", "-H", lab.VIP, "--role", "any"); r.Code != 0 {
		t.Fatalf("SIP OPTIONS to the VIP before the test: %d %q", r.Code, r.Out)
	}
}

// wantMaster asserts what phones rely on after a role change: node holds
// the VIP (the other does not), infra's ARP entry for the VIP (primed
// before with primeARP) was moved to node's MAC by its gratuitous ARP, and
// SIP OPTIONS to the VIP are answered.
func wantMaster(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	other := lab.Node1
	if node == lab.Node1 {
		other = lab.Node2
	}
	if !foVIPOn(t, l, node) || foVIPOn(t, l, other) {
		t.Fatalf("VIP on %s: %v, on %s: %v; want only on %s", node, foVIPOn(t, l, node), other, foVIPOn(t, l, other), node)
	}
	mac, err := l.Exec(node, "cat", "/sys/class/net/"+lab.TelIface+"/address")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lab.WaitFor(ctx, "infra's ARP entry for the VIP", func() error {
		neigh, err := l.Exec(lab.Infra, "ip", "neigh", "show", lab.VIP)
		if err != nil || !strings.Contains(string(neigh), strings.TrimSpace(string(mac))) {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatalf("infra does not see %s's MAC %s for the VIP", node, mac)
	}
	r := runIn(t, l, lab.Infra, "check_pbx_sip", "-H", lab.VIP, "--role", "any")
	if r.Code != 0 {
		t.Fatalf("SIP OPTIONS to the VIP: exit %d %q", r.Code, r.Out)
	}
}

// A failover-class check fails on the master (pbx_raid): the master
// demotes itself and hands over; the slave promotes; one mail tells both
// halves. The databases follow: node2 takes writes, node1 takes none.
func TestHandOverAfterFailureOnMaster(t *testing.T) {
	l := useLab(t)
	primeARP(t, l)
	t0 := time.Now()
	r := handleOn(t, l, lab.Node1, "pbx_raid")
	if r.Code != 0 || !strings.Contains(r.Out, "node2 is master (epoch 2); node1 is standby") {
		t.Fatalf("handle pbx_raid on node1: exit %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Standby, 1)
	wantState(t, l, lab.Node2, cluster.Master, 2)
	wantMaster(t, l, lab.Node2)
	wantMail(t, l, t0, "[pbxlab] FAILOVER: node2 is now master (trigger: pbx_raid CRITICAL on node1, handed over)",
		"Steps on node1 (demote)", "vip       ok", "released from tel0", "kamailio stopped",
		"Steps on node2 (promote)", "fence ", "peer demoted", "garp ", "kamailio started", "role=master epoch=2",
		"node2: master (epoch 2)", "node1: standby")
	// The databases moved with the roles.
	if q := dbCheck(t, l, lab.Node2, dbQuery, "mysql", nil, "--role", "any", "--create"); q.Code != 0 {
		t.Fatalf("node2's MariaDB does not take writes: %s", q.Out)
	}
	if q := dbCheck(t, l, lab.Node1, dbQuery, "mysql", nil, "--role", "any"); q.Code != 2 || !strings.Contains(q.First, "read-only") {
		t.Fatalf("node1's MariaDB after the demote: %s; want CRITICAL read-only", q.Out)
	}
	if q := dbCheck(t, l, lab.Node2, dbQuery, "pgsql", nil, "--role", "any", "--create"); q.Code != 0 {
		t.Fatalf("node2's PostgreSQL does not take writes: %s", q.Out)
	}
	// A second event on node1 (now standby) does nothing.
	if r := handleOn(t, l, lab.Node1, "pbx_raid"); r.Code != 0 || strings.Contains(r.Out, "step ") {
		t.Fatalf("second handle: exit %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node2, cluster.Master, 2)
}

// The master cannot reach its slave: it stays master rather than leave
// the cluster without one, and says so urgently.
func TestHandOverRefusedWhenPeerUnreachable(t *testing.T) {
	l := useLab(t)
	if err := l.Fault(context.Background(), "link-down", lab.Node2, "clu"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := handleOn(t, l, lab.Node1, "pbx_raid")
	if r.Code != 1 || !strings.Contains(r.Out, "refused: cannot hand over: node2 does not answer") {
		t.Fatalf("exit %d %q; want 1, refused", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Master, 1)
	if !foVIPOn(t, l, lab.Node1) {
		t.Fatal("node1 gave up the VIP")
	}
	wantMail(t, l, t0, "[pbxlab] FAILOVER REFUSED on node1: cannot hand over: node2 does not answer", "Importance: urgent", "node1 stays master (epoch 1)")
}

// Planned switchover to node2 and back: each time the old master becomes
// the new one's slave, with its databases replicating from it; status on
// both nodes agrees.
func TestSwitchoverAndBack(t *testing.T) {
	l := useLab(t)
	primeARP(t, l)
	t0 := time.Now()
	if r := eh(t, l, lab.Node1, "failover", "--dry-run"); r.Code != 0 || !strings.Contains(r.Out, "planned switchover to node2") {
		t.Fatalf("dry run: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Master, 1)
	if r := eh(t, l, lab.Node2, "failover"); r.Code != 1 || !strings.Contains(r.Out, "run the switchover on the master") {
		t.Fatalf("failover on the slave: %d %q", r.Code, r.Out)
	}
	r := eh(t, l, lab.Node1, "failover")
	if r.Code != 0 || !strings.Contains(r.Out, "node2 is master (epoch 2); node1 is slave (epoch 2)") {
		t.Fatalf("switchover to node2: exit %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Slave, 2)
	wantState(t, l, lab.Node2, cluster.Master, 2)
	wantMaster(t, l, lab.Node2)
	wantMail(t, l, t0, "[pbxlab] SWITCHOVER: node2 is now master (planned, from node1)",
		"Steps on node1 (demote)", "Steps on node2 (promote)", "Steps on node1 (rejoin)", "role=slave epoch=2", "node1: slave (epoch 2)")
	// node1's databases replicate from node2 now.
	dbCheck(t, l, lab.Node2, dbQuery, "mysql", nil, "--role", "any", "--create")
	dbCheck(t, l, lab.Node2, dbQuery, "pgsql", nil, "--role", "any", "--create")
	for _, drv := range []string{"mysql", "pgsql"} {
		if s := dbCheck(t, l, lab.Node1, dbSync, drv, nil, "--role", "any", "--primary-host", lab.Hosts[1].ClusterIP); s.Code != 0 {
			t.Fatalf("%s replication node2 -> node1 after the switchover: %s", drv, s.Out)
		}
	}
	// status, as the admin reads it, on both nodes.
	for _, n := range lab.Nodes {
		s := eh(t, l, n, "status", "--json")
		var st struct {
			Self, Peer struct {
				Name, Role string
				Epoch      uint64
			}
			VIPARP   string `json:"vip_arp"`
			Problems []string
			Last     *struct {
				Node  string  `json:"node"`
				VIPMS float64 `json:"vip_ms"`
			} `json:"last_failover"`
		}
		if err := json.Unmarshal([]byte(s.Out), &st); err != nil || s.Code != 0 {
			t.Fatalf("status --json on %s: exit %d %v %q", n, s.Code, err, s.Out)
		}
		roles := map[string]string{st.Self.Name: st.Self.Role, st.Peer.Name: st.Peer.Role}
		if roles[lab.Node1] != cluster.Slave || roles[lab.Node2] != cluster.Master || st.Self.Epoch != 2 || st.Peer.Epoch != 2 ||
			!strings.HasPrefix(st.VIPARP, lab.Node2) || len(st.Problems) != 0 || st.Last == nil || st.Last.Node != lab.Node2 || st.Last.VIPMS <= 0 {
			t.Fatalf("status on %s: %+v\n%s", n, st, s.Out)
		}
	}
	txt := eh(t, l, lab.Node1, "status")
	if !strings.Contains(txt.Out, "node1 (this node)") || !strings.Contains(txt.Out, "VIP answered (ARP) by: node2") || !strings.Contains(txt.Out, "last failover: node2 became master") {
		t.Fatalf("status text:\n%s", txt.Out)
	}

	// And back.
	t1 := time.Now()
	r = eh(t, l, lab.Node2, "failover")
	if r.Code != 0 || !strings.Contains(r.Out, "node1 is master (epoch 3); node2 is slave (epoch 3)") {
		t.Fatalf("switchover back to node1: exit %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Master, 3)
	wantState(t, l, lab.Node2, cluster.Slave, 3)
	wantMaster(t, l, lab.Node1)
	wantMail(t, l, t1, "[pbxlab] SWITCHOVER: node1 is now master (planned, from node2)")
	dbCheck(t, l, lab.Node1, dbQuery, "mysql", nil, "--role", "any", "--create")
	if s := dbCheck(t, l, lab.Node2, dbSync, "mysql", nil, "--role", "any", "--primary-host", dbPrimary); s.Code != 0 {
		t.Fatalf("replication node1 -> node2 after the switchover back: %s", s.Out)
	}
}

// A master cut off while the slave took over comes back: it sees the
// higher epoch, steps down (releasing the VIP it still had) and does not
// hand anything over. Then rejoin makes it the slave.
func TestStaleMasterStepsDownAndRejoins(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	primeARP(t, l)
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	if r := handleOn(t, l, lab.Node2, "pbx_master_alive"); r.Code != 0 {
		t.Fatalf("promote on node2: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node2, cluster.Master, 2)
	if !foVIPOn(t, l, lab.Node1) {
		t.Fatal("test premise: cut-off node1 should still have the VIP bound")
	}
	// This test is about node1's own step-down: node2's fence watch would
	// demote node1 first. Stopped, it cannot unfence node1 either: its
	// switch port (the lab's fence_command took it out) goes back by hand,
	// or node1's mail could not leave (SMTP is on the telephony network).
	stopFenceWatch(t, l, lab.Node2)
	if lab.SwitchPortEnabled(ctx, lab.Node1) {
		t.Fatal("node2's promote did not fence cut-off node1 (fence_command)")
	}
	if err := lab.SetSwitchPort(ctx, lab.Node1, true); err != nil {
		t.Fatal(err)
	}
	if err := l.Fault(ctx, "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	// What Icinga on node1 sees, and what it runs.
	c := runIn(t, l, lab.Node1, "check_pbx_cluster", "--config", l.ConfigPath(lab.Node1))
	if c.Code != 2 {
		t.Fatalf("check_pbx_cluster on the stale master: %d %q; want CRITICAL", c.Code, c.Out)
	}
	t0 := time.Now()
	if r := handleOn(t, l, lab.Node1, "pbx_cluster"); r.Code != 0 || !strings.Contains(r.Out, "node1 stepped down: node2 is master at epoch 2") {
		t.Fatalf("handle on node1: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Standby, 1)
	wantState(t, l, lab.Node2, cluster.Master, 2)
	wantMaster(t, l, lab.Node2)
	wantMail(t, l, t0, "[pbxlab] STEPPED DOWN: node1 yields to node2 (master at epoch 2)", "mastership was stale")

	// rejoin: refused on the master, done on the standby.
	if r := eh(t, l, lab.Node2, "rejoin"); r.Code != 1 || !strings.Contains(r.Out, "only a standby node rejoins") {
		t.Fatalf("rejoin on the master: %d %q", r.Code, r.Out)
	}
	if r := eh(t, l, lab.Node1, "rejoin"); r.Code != 0 || !strings.Contains(r.Out, "node1 is the slave of node2 (epoch 2)") {
		t.Fatalf("rejoin on node1: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Slave, 2)
	wantMail(t, l, t0, "[pbxlab] REJOIN: node1 is the slave of node2 again")
}

// Maintenance on both nodes: the handler does nothing, the checks say so;
// off again (and by expiry) it is announced.
func TestMaintenance(t *testing.T) {
	l := useLab(t)
	t0 := time.Now()
	if r := eh(t, l, lab.Node1, "maintenance", "on", "--for", "10m", "--reason", "updating node1"); r.Code != 0 || !strings.Contains(r.Out, "on node2 too") {
		t.Fatalf("maintenance on: %d %q", r.Code, r.Out)
	}
	wantMail(t, l, t0, "[pbxlab] MAINTENANCE STARTED on node1", "updating node1")
	for _, n := range lab.Nodes {
		if _, err := os.Stat(filepath.Join(filepath.Dir(l.StatePath(n)), "maintenance.json")); err != nil {
			t.Fatalf("no maintenance on %s: %v", n, err)
		}
	}
	if err := l.Fault(context.Background(), "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	c := runIn(t, l, lab.Node2, "check_pbx_master_alive", "--config", l.ConfigPath(lab.Node2))
	if c.Code != 0 || !strings.Contains(c.First, "skipped: maintenance until") {
		t.Fatalf("check_pbx_master_alive during maintenance: %d %q", c.Code, c.Out)
	}
	if r := handleOn(t, l, lab.Node2, "pbx_master_alive"); r.Code != 0 || !strings.Contains(r.Stderr, "nothing done: maintenance until") {
		t.Fatalf("handle during maintenance: %d %q %q", r.Code, r.Out, r.Stderr)
	}
	wantState(t, l, lab.Node2, cluster.Slave, 1)
	if foVIPOn(t, l, lab.Node2) {
		t.Fatal("node2 took the VIP during maintenance")
	}
	if err := l.Fault(context.Background(), "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	if r := eh(t, l, lab.Node1, "maintenance", "off"); r.Code != 0 || !strings.Contains(r.Out, "off on node2 too") {
		t.Fatalf("maintenance off: %d %q", r.Code, r.Out)
	}
	wantMail(t, l, t1, "[pbxlab] MAINTENANCE ENDED on node1")
	if r := eh(t, l, lab.Node2, "maintenance", "status"); !strings.Contains(r.Out, "maintenance off") {
		t.Fatalf("node2 still in maintenance: %q", r.Out)
	}
	// Expiry: a forgotten maintenance ends by itself, and says so once.
	eh(t, l, lab.Node2, "maintenance", "on", "--for", "1s")
	time.Sleep(1500 * time.Millisecond)
	t2 := time.Now()
	if r := eh(t, l, lab.Node2, "maintenance", "status"); !strings.Contains(r.Out, "maintenance off") {
		t.Fatalf("expired maintenance still on: %q", r.Out)
	}
	eh(t, l, lab.Node2, "maintenance", "status")
	wantMail(t, l, t2, "[pbxlab] MAINTENANCE ENDED on node2 (expired)")
}

// The slave's replication is broken while the master still answers: a
// promote would lose what the replica lacks, so it is refused before
// anything changes.
func TestPromoteRefusedWhenReplicaLags(t *testing.T) {
	l := useLab(t)
	primeARP(t, l)
	if out, err := l.Exec(lab.Node2, "mariadb", "--defaults-file="+filepath.Join(filepath.Dir(l.ConfigPath(lab.Node2)), "mariadb", "client.cnf"), "-e", "STOP SLAVE"); err != nil {
		t.Fatalf("stopping node2's replica: %v %s", err, out)
	}
	t0 := time.Now()
	r := handleOn(t, l, lab.Node2, "pbx_net_failover")
	if r.Code != 2 || !strings.Contains(r.Stderr, "refusing to promote") {
		t.Fatalf("exit %d %q %q; want 2, refused", r.Code, r.Out, r.Stderr)
	}
	wantState(t, l, lab.Node2, cluster.Slave, 1)
	wantState(t, l, lab.Node1, cluster.Master, 1)
	wantMaster(t, l, lab.Node1)
	wantMail(t, l, t0, "[pbxlab] FAILOVER REFUSED on node2: refusing to promote", "Importance: urgent", "max_promote_lag")
}

// stopFenceWatch kills node's fence watch (pbxha-eventhandler fence-watch,
// started by a promote whose old master did not confirm its demotion),
// failing when none runs.
func stopFenceWatch(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	p := filepath.Join(filepath.Dir(l.ConfigPath(node)), "run", "pbxha", "fence-watch.pid")
	var pid int
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lab.WaitFor(ctx, "the fence watch's pid file", func() error {
		b, err := os.ReadFile(p)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err
	}); err != nil {
		t.Fatalf("no fence watch on %s: %v", node, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the fence watch %d: %v", pid, err)
	}
}

// The master's processes freeze (its kernel still answers ARP and accepts
// TCP): the slave takes over although the VIP is still answered, because
// the old master is provably hung; when it thaws, the fence watch demotes
// it at once.
func TestFrozenMasterFailsOverAndIsFencedOnThaw(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	primeARP(t, l)
	if err := l.Fault(ctx, "freeze", lab.Node1); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := handleOn(t, l, lab.Node2, "pbx_master_alive")
	if r.Code != 0 {
		t.Fatalf("promote with node1 frozen: %d %q %q", r.Code, r.Out, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "old master is hung") {
		t.Fatalf("the DAD step does not say why it took an answered VIP:\n%s", r.Stderr)
	}
	wantState(t, l, lab.Node2, cluster.Master, 2)
	wantMail(t, l, t0, "[pbxlab] FAILOVER: node2 is now master (epoch 2", "isolated by fence_command")
	// The frozen node's kernel still holds the VIP and answers ARP: the
	// lab's fence_command took its switch port out of the switch.
	if lab.SwitchPortEnabled(ctx, lab.Node1) {
		t.Fatalf("node1's switch port is still in the switch after the promote; handler said:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "stonith") {
		t.Fatalf("no stonith step in the handler's log:\n%s", r.Stderr)
	}
	if err := l.Fault(ctx, "thaw", lab.Node1); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := lab.WaitFor(wctx, "node1 to release the VIP after the thaw", func() error {
		if foVIPOn(t, l, lab.Node1) {
			return os.ErrExist
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("node1 released the VIP %s after the thaw", time.Since(thawed).Round(time.Millisecond))
	if err := lab.WaitFor(wctx, "node1 to be standby (its demote stops the services, then writes the state)", func() error {
		if st, err := cluster.ReadState(l.StatePath(lab.Node1)); err != nil || st.Role != cluster.Standby {
			return fmt.Errorf("%+v %v", st, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantState(t, l, lab.Node1, cluster.Standby, 1)
	wantMaster(t, l, lab.Node2)
	wantMail(t, l, t0, "[pbxlab] FENCED: node1 (stale master at epoch 1) demoted, node2 stays master", "fence watch", "node1 unfenced")
	if !lab.SwitchPortEnabled(ctx, lab.Node1) {
		t.Fatal("node1's switch port is still out of the switch after it demoted")
	}
}

// The rightful master's own check_pbx_cluster sees the stale master come
// back ("the peer must yield"): its handler fences it, hands nothing over.
func TestRightfulMasterFencesStaleMaster(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	if r := handleOn(t, l, lab.Node2, "pbx_master_alive"); r.Code != 0 {
		t.Fatalf("promote on node2: %d %q", r.Code, r.Out)
	}
	stopFenceWatch(t, l, lab.Node2)
	if err := l.Fault(ctx, "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	// Once node1 answers again (its links just came up), node2's check
	// says what Icinga would act on.
	var c Run
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := lab.WaitFor(wctx, "node2's check_pbx_cluster to see node1 back", func() error {
		c = runIn(t, l, lab.Node2, "check_pbx_cluster", "--config", l.ConfigPath(lab.Node2))
		if c.Code != 2 || !strings.Contains(c.Out, "must yield") {
			return fmt.Errorf("exit %d %q", c.Code, c.First)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if r := handleOn(t, l, lab.Node2, "pbx_cluster"); r.Code != 0 || !strings.Contains(r.Out, "node1 fenced: it is standby; node2 stays master (epoch 2)") {
		t.Fatalf("handle pbx_cluster on node2: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Standby, 1)
	wantState(t, l, lab.Node2, cluster.Master, 2)
	if foVIPOn(t, l, lab.Node1) {
		t.Fatal("node1 still holds the VIP")
	}
	wantMail(t, l, t0, "[pbxlab] FENCED: node1 (stale master at epoch 1) demoted, node2 stays master", "node1 unfenced")
	if !lab.SwitchPortEnabled(ctx, lab.Node1) {
		t.Fatal("node1's switch port is still out of the switch after it demoted")
	}
}
