package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
)

// foHandle is the event handler as Icinga would run it on node2 for
// pbx_master_alive CRITICAL HARD.
func foHandle(t *testing.T, l *lab.Lab, node string) []string {
	return []string{bin(t, "pbxha-eventhandler"), "handle", "--config", l.ConfigPath(node),
		"--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3",
		"--output", "PBX_MASTER_ALIVE CRITICAL - node1 unreachable"}
}

// foVIPOn reports whether node's tel0 holds the VIP.
func foVIPOn(t *testing.T, l *lab.Lab, node string) bool {
	t.Helper()
	out, err := l.Exec(node, "ip", "-o", "addr", "show", lab.TelIface)
	if err != nil {
		t.Fatalf("ip addr in %s: %v: %s", node, err, out)
	}
	return strings.Contains(string(out), " "+lab.VIP+"/")
}

// foMails returns the messages in the sink that arrived after since.
func foMails(t *testing.T, l *lab.Lab, since time.Time) []string {
	t.Helper()
	ents, err := os.ReadDir(l.Maildir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		if fi, err := e.Info(); err != nil || fi.ModTime().Before(since) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(l.Maildir(), e.Name()))
		if err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

func foAfterPromote(t *testing.T, l *lab.Lab, since time.Time) {
	t.Helper()
	if !foVIPOn(t, l, lab.Node2) {
		t.Fatal("the VIP is not on node2's tel0")
	}
	st, err := cluster.ReadState(l.StatePath(lab.Node2))
	if err != nil || st.Role != cluster.Master || st.Epoch != 2 {
		t.Fatalf("node2 state %+v %v; want master epoch 2", st, err)
	}
	r := runIn(t, l, lab.Infra, "check_pbx_sip", "-H", lab.VIP, "--role", "any")
	if r.Code != 0 || !strings.Contains(r.First, "OK") {
		t.Fatalf("SIP OPTIONS to the VIP from infra: exit %d %q", r.Code, r.Out)
	}
	mac, err := l.Exec(lab.Node2, "cat", "/sys/class/net/"+lab.TelIface+"/address")
	if err != nil {
		t.Fatal(err)
	}
	neigh, err := l.Exec(lab.Infra, "ip", "neigh", "show", lab.VIP)
	if err != nil || !strings.Contains(string(neigh), strings.TrimSpace(string(mac))) {
		t.Fatalf("infra's ARP entry for the VIP: %q (%v); want node2's MAC %s", neigh, err, mac)
	}
	var mails []string
	lab.WaitFor(context.Background(), "the failover mail", func() error {
		mails = foMails(t, l, since)
		if len(mails) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	if len(mails) != 1 {
		t.Fatalf("%d mails since the fault, want exactly 1:\n%s", len(mails), strings.Join(mails, "\n----\n"))
	}
	m := mails[0]
	t.Logf("the mail:\n%s", m)
	for _, want := range []string{"Subject: [pbxlab] FAILOVER: node2 is now master (epoch 2", "pbx_master_alive CRITICAL HARD",
		"fence ", "dad ", "vip ", "garp ", "service ", "kamailio started", "role=master epoch=2", "node2: master (epoch 2)"} {
		if !strings.Contains(m, want) {
			t.Errorf("the mail lacks %q:\n%s", want, m)
		}
	}
}

func TestFailoverMasterDown(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	argv := foHandle(t, l, lab.Node2)
	t0 := time.Now()
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := l.Command(hctx, lab.Node2, argv...)
	var vipAt time.Duration
	done := make(chan struct{})
	go func() { // measure when the VIP appears, independently of the handler
		defer close(done)
		for time.Since(t0) < 30*time.Second {
			if out, err := l.Exec(lab.Node2, "ip", "-o", "addr", "show", lab.TelIface); err == nil && strings.Contains(string(out), " "+lab.VIP+"/") {
				vipAt = time.Since(t0)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out, err := cmd.CombinedOutput()
	total := time.Since(t0)
	<-done
	if err != nil {
		t.Fatalf("handle on node2: %v\n%s", err, out)
	}
	t.Logf("fault to VIP on node2: %s (polled); handler done after %s\n%s", vipAt.Round(time.Millisecond), total.Round(time.Millisecond), out)
	foAfterPromote(t, l, t0)

	// A second handle now is a no-op: exit 0, no second mail, epoch kept.
	again, err := l.Command(hctx, lab.Node2, argv...).CombinedOutput()
	if err != nil || !strings.Contains(string(again), "already master") || strings.Contains(string(again), "step ") {
		t.Fatalf("second handle: %v\n%s", err, again)
	}
	foAfterPromote(t, l, t0)
}

func TestFailoverConcurrentHandlers(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	argv := foHandle(t, l, lab.Node2)
	t0 := time.Now()
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			b, err := l.Command(hctx, lab.Node2, argv...).CombinedOutput()
			outs[i], errs[i] = string(b), err
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("handler %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	acted := 0
	for _, o := range outs {
		if strings.Contains(o, "step vip") {
			acted++
		}
	}
	if acted != 1 {
		t.Fatalf("%d handlers bound the VIP, want exactly 1:\n%s\n----\n%s", acted, outs[0], outs[1])
	}
	foAfterPromote(t, l, t0)
}

// The old master still answers on the cluster network: node2 asks it to
// demote over SSH (pbxha-peer demote) before taking the VIP.
func TestFailoverFencesReachableMaster(t *testing.T) {
	l := useLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := l.Command(ctx, lab.Node2, foHandle(t, l, lab.Node2)...).CombinedOutput()
	t.Logf("handler done after %s\n%s", time.Since(t0).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("handle on node2: %v", err)
	}
	if !strings.Contains(string(out), "peer demoted: node1 is standby at epoch 1, VIP released=true") {
		t.Fatal("node1 did not confirm its demotion")
	}
	if foVIPOn(t, l, lab.Node1) {
		t.Fatal("node1 still holds the VIP")
	}
	st, err := cluster.ReadState(l.StatePath(lab.Node1))
	if err != nil || st.Role != cluster.Standby || st.Epoch != 1 {
		t.Fatalf("node1 state %+v %v; want standby epoch 1", st, err)
	}
	foAfterPromote(t, l, t0)
}

// SMTP sink down during the failover: the mail is spooled on node2, and
// `flush` delivers it once the sink is back.
func TestFailoverMailSpooledWhenSMTPDown(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	if err := l.Fault(ctx, "kill", lab.Infra, "smtp"); err != nil {
		t.Fatal(err)
	}
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := l.Command(hctx, lab.Node2, foHandle(t, l, lab.Node2)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mail spooled") {
		t.Fatalf("handle with SMTP down: %v\n%s", err, out)
	}
	cfg, err := l.NodeConfig(lab.Node2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(foSpool(t, cfg.SMTP.SpoolDir)); n != 1 {
		t.Fatalf("%d spooled on node2, want 1", n)
	}
	if m := foMails(t, l, t0); len(m) != 0 {
		t.Fatalf("%d mails arrived with the sink down", len(m))
	}
	if err := l.Fault(ctx, "start", lab.Infra, "smtp"); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, l, lab.Node2, "pbxha-eventhandler", "flush", "--config", l.ConfigPath(lab.Node2))
	if r.Code != 0 || !strings.HasPrefix(r.First, "sent 1 spooled message(s), 0 left") {
		t.Fatalf("flush: exit %d %q %q", r.Code, r.Out, r.Stderr)
	}
	if n := len(foSpool(t, cfg.SMTP.SpoolDir)); n != 0 {
		t.Fatalf("%d still spooled after flush", n)
	}
	foAfterPromote(t, l, t0)
}

func foSpool(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Split-brain guard: node1 is cut from the cluster network only, so it
// cannot be asked to demote and still answers ARP for the VIP. node2 must
// refuse: exit 2, VIP not taken, state unchanged, an urgent mail.
func TestFailoverRefusesWhileVIPAnswered(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	if err := l.Fault(ctx, "link-down", lab.Node1, "clu"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := l.Command(hctx, lab.Node2, foHandle(t, l, lab.Node2)...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("handle: %v; want exit 2 (refused)", err)
	}
	if foVIPOn(t, l, lab.Node2) || !foVIPOn(t, l, lab.Node1) {
		t.Fatal("the VIP moved despite the refusal")
	}
	if st, err := cluster.ReadState(l.StatePath(lab.Node2)); err != nil || st.Role != cluster.Slave || st.Epoch != 1 {
		t.Fatalf("node2 state %+v %v; want slave epoch 1", st, err)
	}
	var mails []string
	lab.WaitFor(ctx, "the refusal mail", func() error {
		if mails = foMails(t, l, t0); len(mails) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	if len(mails) != 1 || !strings.Contains(mails[0], "refusing to take the VIP: still answered by MAC") ||
		!strings.Contains(mails[0], "possible split brain") || !strings.Contains(mails[0], "X-Priority: 1") {
		t.Fatalf("mails: %q", mails)
	}
}
