package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
)

// Generous bounds for `make test` (the targets, VIP ≤ 3 s and SIP
// ≤ 4 s median, are for `make bench-failover`).
// pbx_raid is checked every 30 s, so its bounds are 30 s longer.
const (
	maxToARP  = 30 * time.Second
	maxToSIP  = 35 * time.Second
	maxToMail = 45 * time.Second
	raidExtra = 30 * time.Second
)

func state(t *testing.T, l *lab.Lab, node string) cluster.State {
	t.Helper()
	st, err := cluster.ReadState(l.StatePath(node))
	if err != nil {
		t.Fatalf("%s's state: %v", node, err)
	}
	return st
}

// waitState waits until node's state file says role.
func waitState(t *testing.T, l *lab.Lab, node, role string, timeout time.Duration) (cluster.State, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st cluster.State
	err := lab.WaitFor(ctx, node+" "+role, func() error {
		var err error
		st, err = cluster.ReadState(l.StatePath(node))
		if err == nil && st.Role != role {
			err = errorf("%s is %s at epoch %d", node, st.Role, st.Epoch)
		}
		return err
	})
	return st, err
}

// failover is one trigger run end to end: the fault, then what phones see.
type failover struct {
	ic      *icinga
	w       *watcher
	res     watchResult
	hard    time.Duration // fault -> the handler called at HARD CRITICAL
	what    string        // the fault
	trigger string        // the handler's service
	on      string        // the node whose Icinga sees the fault
}

// runFailover applies the fault and waits until node2 answers for the VIP
// (ARP, SIP) and the failover mail is in the sink; it logs the times.
func runFailover(t *testing.T, ic *icinga, what, trigger, on string, fault func() error) *failover {
	t.Helper()
	w := watch(t, ic, lab.Node2, "FAILOVER: node2 is now master", what, fault)
	f := &failover{ic: ic, w: w, what: what, trigger: trigger, on: on}
	err := w.wait(75 * time.Second)
	if at := ic.handlerCall(on, "called: service="+trigger+" state=CRITICAL type=HARD"); !at.IsZero() {
		f.hard = at.Sub(w.t0)
	} else {
		f.hard = -1
	}
	if err != nil {
		f.res = w.result()
		t.Logf("timeline:\n  %s", strings.Join(f.res.Timeline, "\n  "))
		t.Fatal(err)
	}
	return f
}

// report logs the figures and asserts the bounds.
func (f *failover) report(t *testing.T) {
	t.Helper()
	f.res = f.w.result()
	t.Logf("timeline:\n  %s", strings.Join(f.res.Timeline, "\n  "))
	t.Logf("%s: fault -> %s HARD CRITICAL and the handler on %s %s, -> infra ARP on node2 %s, -> SIP answered %s, -> failover mail %s; split brain (VIP on both, both tel ports up) %s",
		t.Name(), f.trigger, f.on, secs(f.hard), secs(f.res.ARP), secs(f.res.SIP), secs(f.res.Mail), secs(f.res.SplitBrain))
	var subs []string
	for _, m := range mails(f.ic.l, f.w.t0) {
		subs = append(subs, fmt.Sprintf("+%.2fs %s", m.At.Sub(f.w.t0).Seconds(), m.Subject))
	}
	t.Logf("mails since the fault:\n  %s", strings.Join(subs, "\n  "))
	for _, n := range lab.Nodes {
		t.Logf("%s's handler since the fault:\n  %s", n, strings.Join(f.ic.handlerSince(n, f.w.t0), "\n  "))
	}
	for _, c := range []struct {
		what     string
		got, max time.Duration
	}{{"infra's ARP entry on node2", f.res.ARP, maxToARP}, {"SIP answered", f.res.SIP, maxToSIP}, {"the mail", f.res.Mail, maxToMail}} {
		if f.trigger == "pbx_raid" {
			c.max += raidExtra
		}
		if c.got < 0 || c.got > c.max {
			t.Errorf("fault -> %s: %s, want at most %s", c.what, secs(c.got), c.max)
		}
	}
}

// wantOnlyMaster asserts node2 master at epoch 2 holding the VIP alone,
// node1 standby, SIP from infra answered.
func wantNode2Master(t *testing.T, l *lab.Lab) {
	t.Helper()
	if st := state(t, l, lab.Node2); st.Role != cluster.Master || st.Epoch != 2 {
		t.Errorf("node2 is %s at epoch %d, want master at 2", st.Role, st.Epoch)
	}
	if st := state(t, l, lab.Node1); st.Role != cluster.Standby {
		t.Errorf("node1 is %s at epoch %d, want standby", st.Role, st.Epoch)
	}
	if h := l.VIPHolders(context.Background()); len(h) != 1 || h[0] != lab.Node2 {
		t.Errorf("VIP on %v, want only node2", h)
	}
	if r := sipFromInfra(t, l); r.Code != 0 {
		t.Errorf("SIP OPTIONS to the VIP after the failover: %d %q", r.Code, r.First)
	}
}

// The master loses both links: node2's Icinga sees pbx_master_alive HARD
// CRITICAL and its handler promotes node2. When node1 comes back, its own
// Icinga's pbx_cluster sees node2 master at a higher epoch and the
// handler steps node1 down to standby; the VIP stays on node2.
func TestE2ELinkDownAll(t *testing.T) {
	l := useLab(t)
	ic := startIcinga(t, l)
	primeARP(t, l)
	ctx := context.Background()
	f := runFailover(t, ic, "link-down node1 all", "pbx_master_alive", lab.Node2, func() error {
		return l.Fault(ctx, "link-down", lab.Node1, "all")
	})
	st := state(t, l, lab.Node1)
	t.Logf("cut-off node1 is %s at epoch %d", st.Role, st.Epoch)
	back := time.Now()
	if err := l.Fault(ctx, "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	f.w.mark("fault undone: link-up node1 all")
	_, err := waitState(t, l, lab.Node1, cluster.Standby, 40*time.Second)
	down := time.Since(back)
	f.report(t)
	if err != nil {
		t.Fatalf("node1 after its links came back: %v", err)
	}
	t.Logf("links back -> node1 standby %.2fs", down.Seconds())
	wantNode2Master(t, l)
	waitMail(t, l, f.w.t0, stoodDown)
	f.record(t, "FAILOVER: node2 is now master", stoodDown)
}

// The master's telephony link goes down: node2's pbx_net_failover (node1,
// asked over the cluster network, reaches no telephony target; node2
// does) goes HARD CRITICAL and node2 promotes, fencing node1 to standby
// over the cluster network.
func TestE2ELinkDownTel(t *testing.T) {
	l := useLab(t)
	ic := startIcinga(t, l)
	primeARP(t, l)
	ctx := context.Background()
	f := runFailover(t, ic, "link-down node1 tel", "pbx_net_failover", lab.Node2, func() error {
		return l.Fault(ctx, "link-down", lab.Node1, "tel")
	})
	if err := l.Fault(ctx, "link-up", lab.Node1, "tel"); err != nil {
		t.Fatal(err)
	}
	f.w.mark("fault undone: link-up node1 tel")
	time.Sleep(6 * time.Second) // a few checks of node1's own Icinga
	f.report(t)
	wantNode2Master(t, l)
	f.record(t, "FAILOVER: node2 is now master")
}

// node1's 3ware array fails (tw_cli now reports it DEGRADED with a failed
// drive): node1's own Icinga sees pbx_raid HARD CRITICAL, and its handler
// hands over: node1 demotes itself, node2 promotes.
func TestE2ERAID(t *testing.T) {
	l := useLab(t)
	ic := startIcinga(t, l)
	// pbx_raid runs every 30 s: wait for its first OK, so the fault meets
	// a HARD OK as in production.
	ic.waitServices(45*time.Second, []string{lab.Node1}, []string{"pbx_raid"}, func(s svcStatus) bool { return s.Checked && s.State == 0 })
	primeARP(t, l)
	f := runFailover(t, ic, "node1's tw_cli reports the array DEGRADED", "pbx_raid", lab.Node1, func() error {
		ic.setRAID(lab.Node1, "failed")
		return nil
	})
	f.report(t)
	wantNode2Master(t, l)
	f.record(t, "FAILOVER: node2 is now master")
}

// record adds the run to make e2e's summary.
func (f *failover) record(t *testing.T, mails ...string) {
	got, _ := countMails(f.ic.l, f.w.t0, mails)
	record(outcome{Case: f.what, FoMin: 1, FoMax: 1, FoSeen: failoversSeen(t, f.ic.l), SplitBrain: f.res.SplitBrain,
		Longest: f.res.Longest, MailsWant: len(mails), MailsGot: got})
}

// waitMail waits for a mail whose subject contains subject (or one of its
// "|"-separated alternatives).
func waitMail(t *testing.T, l *lab.Lab, since time.Time, subject string) sinkMail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range mails(l, since) {
			if subjectIs(m.Subject, subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var subs []string
			for _, m := range mails(l, since) {
				subs = append(subs, m.Subject)
			}
			t.Fatalf("no mail %q; the sink has:\n  %s", subject, strings.Join(subs, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
