package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/mail"
	"pbxha/testharness/lab"
)

// outcome is one run of one case, for the summary.
type outcome struct {
	Case       string
	FoMax      int // failovers allowed
	FoMin      int // failovers required
	FoSeen     int // epoch increments
	SplitBrain time.Duration
	Longest    time.Duration
	MailsWant  int
	MailsGot   int
	Note       string
}

var (
	summaryMu sync.Mutex
	summary   []outcome
)

func record(o outcome) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	summary = append(summary, o)
}

// failoversSeen is how many promotes happened since the reset: each one
// raises the epoch by one.
func failoversSeen(t *testing.T, l *lab.Lab) int {
	e := max(state(t, l, lab.Node1).Epoch, state(t, l, lab.Node2).Epoch)
	return int(e) - 1
}

// countMails says how many of want (subject substrings) are in the sink
// since since, and lists the missing ones.
// stoodDown is the mail of a cut-off or frozen old master that stood down
// when it came back: its own handler's, or the new master's fence watch's
// (whichever got there first; the other then finds nothing to do).
const stoodDown = "STEPPED DOWN: node1 yields to node2|FENCED: node1 (stale master at epoch 1) demoted"

// subjectIs reports whether subject contains one of the "|"-separated
// alternatives of want.
func subjectIs(subject, want string) bool {
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(subject, w) {
			return true
		}
	}
	return false
}

func countMails(l *lab.Lab, since time.Time, want []string) (int, []string) {
	got := mails(l, since)
	var n int
	var missing []string
	for _, w := range want {
		found := false
		for _, m := range got {
			found = found || subjectIs(m.Subject, w)
		}
		if found {
			n++
		} else {
			missing = append(missing, w)
		}
	}
	return n, missing
}

// garpWindow is how long the new master's gratuitous ARPs last
// (garp_count × garp_interval of cluster.toml): the only time two VIP
// holders are tolerated.
func garpWindow(t *testing.T, l *lab.Lab) time.Duration {
	cfg, err := l.NodeConfig(lab.Node2)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(cfg.Failover.GARPCount) * cfg.Failover.GARPInterval.Duration
}

// matrixCase is one row of issue 10's fault matrix.
type matrixCase struct {
	name         string
	foMin, foMax int
	// run applies the fault (w starts at it) and undoes it; it returns the
	// mails expected (subject substrings) and a note.
	run func(t *testing.T, l *lab.Lab, ic *icinga) (w *watcher, mails []string, note string)
}

func sleepMark(w *watcher, d time.Duration, format string, args ...any) {
	time.Sleep(d)
	w.mark(format, args...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var matrix = []matrixCase{
	{"cluster link down only", 0, 0, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		w := watch(t, ic, lab.Node2, "", "link-down node1 clu", func() error { return l.Fault(ctx, "link-down", lab.Node1, "clu") })
		ic.waitServices(30*time.Second, []string{lab.Node2}, []string{"pbx_master_alive"}, func(s svcStatus) bool { return s.Hard && s.State == 1 })
		time.Sleep(5 * time.Second)
		must(t, l.Fault(ctx, "link-up", lab.Node1, "clu"))
		w.mark("link-up node1 clu")
		time.Sleep(8 * time.Second)
		return w, []string{"PROBLEM: pbx_master_alive on node2 is WARNING"}, ""
	}},
	{"slave's telephony link down", 0, 0, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		w := watch(t, ic, lab.Node2, "", "link-down node2 tel", func() error { return l.Fault(ctx, "link-down", lab.Node2, "tel") })
		ic.waitServices(30*time.Second, []string{lab.Node2}, []string{"pbx_master_alive"}, func(s svcStatus) bool { return s.Hard && s.State == 1 })
		time.Sleep(8 * time.Second)
		must(t, l.Fault(ctx, "link-up", lab.Node2, "tel"))
		w.mark("link-up node2 tel")
		// node2's PROBLEM mail could not be sent (SMTP is on the
		// telephony network): the RECOVERY's pbxha-notify sends the spool.
		waitFor(20*time.Second, func() bool {
			n, _ := countMails(l, w.t0, []string{"PROBLEM: pbx_master_alive on node2 is WARNING"})
			return n == 1
		})
		return w, []string{"PROBLEM: pbx_master_alive on node2 is WARNING"}, "the PROBLEM mail is spooled while node2 is cut off"
	}},
	{"master frozen shorter than the detection window", 0, 0, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		w := watch(t, ic, lab.Node2, "", "freeze node1 (1.5 s)", func() error { return l.Fault(ctx, "freeze", lab.Node1) })
		time.Sleep(1500 * time.Millisecond)
		must(t, l.Fault(ctx, "thaw", lab.Node1))
		w.mark("thaw node1")
		time.Sleep(12 * time.Second)
		return w, nil, ""
	}},
	{"master frozen long enough", 1, 1, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		primeARP(t, l)
		w := watch(t, ic, lab.Node2, "FAILOVER: node2 is now master", "freeze node1 (20 s)", func() error { return l.Fault(ctx, "freeze", lab.Node1) })
		time.Sleep(20 * time.Second)
		must(t, l.Fault(ctx, "thaw", lab.Node1))
		w.mark("thaw node1")
		_, err := waitState(t, l, lab.Node1, cluster.Standby, 30*time.Second)
		note := ""
		if err != nil {
			note = "node1 after the thaw: " + err.Error()
		}
		time.Sleep(3 * time.Second)
		return w, []string{"FAILOVER: node2 is now master", stoodDown}, note
	}},
	{"flapping telephony link on the master", 0, 1, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		w := watch(t, ic, lab.Node2, "", "link-down node1 tel (flapping: 3 s down, 3 s up, 6 times)", func() error { return l.Fault(ctx, "link-down", lab.Node1, "tel") })
		for i := range 6 {
			if i > 0 {
				must(t, l.Fault(ctx, "link-down", lab.Node1, "tel"))
				w.mark("link-down node1 tel")
			}
			time.Sleep(3 * time.Second)
			must(t, l.Fault(ctx, "link-up", lab.Node1, "tel"))
			w.mark("link-up node1 tel")
			time.Sleep(3 * time.Second)
		}
		time.Sleep(10 * time.Second)
		var want []string
		if failoversSeen(t, l) > 0 {
			want = []string{"FAILOVER: node2 is now master"}
		}
		return w, want, ""
	}},
	{"SMTP down during a failover", 1, 1, func(t *testing.T, l *lab.Lab, ic *icinga) (*watcher, []string, string) {
		ctx := context.Background()
		must(t, l.Fault(ctx, "kill", lab.Infra, "smtp"))
		primeARP(t, l)
		w := watch(t, ic, lab.Node2, "", "smtp killed; link-down node1 all", func() error { return l.Fault(ctx, "link-down", lab.Node1, "all") })
		if _, err := waitState(t, l, lab.Node2, cluster.Master, 40*time.Second); err != nil {
			return w, []string{"FAILOVER: node2 is now master"}, "no failover: " + err.Error()
		}
		w.mark("node2 master")
		spooled := mail.Pending(filepath.Join(l.HostDir(lab.Node2), "spool"))
		time.Sleep(3 * time.Second)
		must(t, l.Fault(ctx, "start", lab.Infra, "smtp"))
		w.mark("smtp started")
		must(t, l.Fault(ctx, "link-up", lab.Node1, "all"))
		w.mark("link-up node1 all")
		want := []string{"FAILOVER: node2 is now master", stoodDown}
		note := fmt.Sprintf("%d mail(s) spooled on node2 while SMTP was down", spooled)
		if !waitFor(45*time.Second, func() bool { n, _ := countMails(l, w.t0, want); return n == len(want) }) {
			// What pbxha-mail-flush.timer does every 5 minutes.
			for _, n := range lab.Nodes {
				r := runIn(t, l, n, 30*time.Second, "pbxha-notify", "--flush", "--config", l.ConfigPath(n))
				note += fmt.Sprintf("; not sent 45 s after SMTP returned, so `pbxha-notify --flush` (the timer's job) on %s: %s", n, strings.TrimSpace(r.Out+r.Stderr))
			}
			waitFor(10*time.Second, func() bool { n, _ := countMails(l, w.t0, want); return n == len(want) })
		}
		return w, want, note
	}},
}

func waitFor(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}

// TestE2EMatrix runs issue 10's fault matrix PBXHA_E2E_RUNS times (default
// 1) when PBXHA_E2E=all (`make e2e`), then prints the summary of every
// end-to-end run of this package.
func TestE2EMatrix(t *testing.T) {
	if os.Getenv("PBXHA_E2E") != "all" {
		t.Skip("the fault matrix runs with PBXHA_E2E=all (make e2e)")
	}
	runs := 1
	if s := os.Getenv("PBXHA_E2E_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PBXHA_E2E_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	for _, c := range matrix {
		for i := range runs {
			t.Run(fmt.Sprintf("%s/%d", strings.ReplaceAll(c.name, " ", "_"), i+1), func(t *testing.T) {
				l := useLab(t)
				ic := startIcinga(t, l)
				w, want, note := c.run(t, l, ic)
				res := w.result()
				o := outcome{Case: c.name, FoMin: c.foMin, FoMax: c.foMax, FoSeen: failoversSeen(t, l),
					SplitBrain: res.SplitBrain, Longest: res.Longest, MailsWant: len(want), Note: note}
				var missing []string
				o.MailsGot, missing = countMails(l, w.t0, want)
				record(o)
				t.Logf("timeline:\n  %s", strings.Join(res.Timeline, "\n  "))
				var subs []string
				for _, m := range mails(l, w.t0) {
					subs = append(subs, fmt.Sprintf("+%.2fs %s", m.At.Sub(w.t0).Seconds(), m.Subject))
				}
				t.Logf("mails:\n  %s", strings.Join(subs, "\n  "))
				for _, n := range lab.Nodes {
					t.Logf("%s's handler:\n  %s", n, strings.Join(ic.handlerSince(n, w.t0), "\n  "))
				}
				if o.FoSeen < c.foMin || o.FoSeen > c.foMax {
					t.Errorf("%d failover(s), want %d to %d", o.FoSeen, c.foMin, c.foMax)
				}
				if win := garpWindow(t, l); res.Longest > win+sampleEvery {
					t.Errorf("split brain: the VIP on both nodes (both on the telephony network) for %s at a stretch, %s in all; the GARP window is %s",
						secs(res.Longest), secs(res.SplitBrain), win)
				}
				if len(missing) > 0 {
					t.Errorf("mails not delivered: %q", missing)
				}
				if note != "" {
					t.Log(note)
				}
			})
		}
	}
	printSummary(t)
}

func printSummary(t *testing.T) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	var b strings.Builder
	var foMin, foExp, foSeen, mw, mg int
	var sb, longest time.Duration
	for _, o := range summary {
		exp := strconv.Itoa(o.FoMin)
		if o.FoMax != o.FoMin {
			exp = fmt.Sprintf("%d-%d", o.FoMin, o.FoMax)
		}
		fmt.Fprintf(&b, "  %-50s failovers expected %-3s seen %d | split brain %5.2fs (longest %.2fs) | mails %d/%d", o.Case, exp, o.FoSeen,
			o.SplitBrain.Seconds(), o.Longest.Seconds(), o.MailsGot, o.MailsWant)
		if o.Note != "" {
			fmt.Fprintf(&b, " | %s", o.Note)
		}
		b.WriteString("\n")
		foMin += o.FoMin
		foExp += o.FoMax
		foSeen += o.FoSeen
		mw += o.MailsWant
		mg += o.MailsGot
		sb += o.SplitBrain
		longest = max(longest, o.Longest)
	}
	exp := strconv.Itoa(foExp)
	if foMin != foExp {
		exp = fmt.Sprintf("%d-%d", foMin, foExp)
	}
	line := fmt.Sprintf("e2e summary: failovers expected/seen %s/%d, split_brain_seconds %.2f (longest %.2f), emails expected/delivered %d/%d",
		exp, foSeen, sb.Seconds(), longest.Seconds(), mw, mg)
	t.Logf("%s\n%s", line, b.String())
	fmt.Println(line)
}
