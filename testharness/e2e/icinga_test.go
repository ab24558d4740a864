package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// failoverChecks are the failover-class services every node runs at the
// tight interval (pbx_raid, at 30 s, is waited for only where a test needs
// it).
var failoverChecks = []string{"pbx_master_alive", "pbx_cluster", "pbx_net_failover"}

// checkPing is the plugin of the shipped host check (ITL's hostalive).
const checkPing = lab.CheckPing

// icinga is the two nodes' Icinga 2 instances of one test.
type icinga struct {
	t   *testing.T
	l   *lab.Lab
	bin string
	// base is each node's Icinga folder in the lab (the parent of
	// l.IcingaDataDir): conf/, plugins/, tw_cli/, log/, data/...
	base map[string]string
}

// startIcinga writes each node's configuration (icinga-conf/*.conf as
// shipped, a Host for the node only, zones.conf.standalone), forgets any
// state a previous run left, starts Icinga 2 in both nodes' namespaces and
// waits until each node's failover checks have an OK result: the faults
// start from a HARD OK, as in production.
func startIcinga(t *testing.T, l *lab.Lab) *icinga {
	t.Helper()
	for _, p := range []string{lab.IcingaBin, checkPing} {
		if _, err := os.Stat(p); err != nil {
			noLab(t, fmt.Sprintf("%v (scripts/deps installs icinga2-bin and monitoring-plugins-basic)", err))
		}
	}
	ic := &icinga{t: t, l: l, bin: binDir(t), base: map[string]string{}}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	confs := map[string]string{}
	for _, node := range lab.Nodes {
		ic.base[node] = l.IcingaBase(node)
		if confs[node], err = l.WriteIcingaConf(node, repo, ic.bin, filepath.Join("testdata", "tw_cli", "ok")); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(lab.Nodes))
	for i, node := range lab.Nodes {
		wg.Go(func() { errs[i] = l.StartIcinga(ctx, node, confs[node]) })
	}
	wg.Wait()
	t.Cleanup(func() {
		// Reset stops them too; stopping here first keeps the handler
		// from acting on the lab while it is being reset.
		t1 := time.Now()
		for _, n := range lab.Nodes {
			if err := l.StopIcinga(context.Background(), n); err != nil {
				t.Errorf("stopping Icinga on %s: %v", n, err)
			}
		}
		t.Logf("Icinga 2 stopped on both nodes in %.1fs; now the lab's reset", time.Since(t1).Seconds())
	})
	t.Cleanup(func() {
		if t.Failed() {
			ic.dump()
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting Icinga 2 on %s: %v", lab.Nodes[i], err)
		}
	}
	ic.waitServices(60*time.Second, lab.Nodes, failoverChecks, func(s svcStatus) bool { return s.Checked && s.State == 0 })
	t.Logf("Icinga 2 up on both nodes, failover checks OK, after %.1fs", time.Since(t0).Seconds())
	return ic
}

// setRAID points node's tw_cli at testdata/tw_cli/<which> (ok, failed),
// atomically.
func (ic *icinga) setRAID(node, which string) {
	ic.t.Helper()
	if err := ic.l.SetIcingaRAID(node, filepath.Join("testdata", "tw_cli", which)); err != nil {
		ic.t.Fatal(err)
	}
}

// svcStatus is a service as status.dat shows it.
type svcStatus struct {
	Checked   bool
	State     int // 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
	Hard      bool
	Attempt   int
	Output    string
	LastCheck int64
}

func (s svcStatus) String() string {
	typ := "SOFT"
	if s.Hard {
		typ = "HARD"
	}
	if !s.Checked {
		return "PENDING"
	}
	return fmt.Sprintf("%s %s %d: %s", [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}[min(max(s.State, 0), 3)], typ, s.Attempt, s.Output)
}

// services reads node's status.dat (rewritten every second).
func (ic *icinga) services(node string) map[string]svcStatus {
	f, err := os.Open(filepath.Join(ic.base[node], "status.dat"))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]svcStatus{}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "servicestatus {":
			cur = map[string]string{}
		case line == "}" && cur != nil:
			atoi := func(k string) int { n, _ := strconv.Atoi(cur[k]); return n }
			out[cur["service_description"]] = svcStatus{
				Checked: cur["has_been_checked"] == "1", State: atoi("current_state"), Hard: cur["state_type"] == "1",
				Attempt: atoi("current_attempt"), Output: cur["plugin_output"], LastCheck: int64(atoi("last_check")),
			}
			cur = nil
		case cur != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				cur[k] = v
			}
		}
	}
	return out
}

// waitServices waits until every named service on every node satisfies ok.
func (ic *icinga) waitServices(timeout time.Duration, nodes, names []string, ok func(svcStatus) bool) {
	ic.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for _, n := range nodes {
			st := ic.services(n)
			for _, s := range names {
				if !ok(st[s]) {
					pending = append(pending, fmt.Sprintf("%s!%s: %s", n, s, st[s]))
				}
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ic.dump()
			ic.t.Fatalf("after %s, still:\n  %s", timeout, strings.Join(pending, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// compat is node's compat log: SERVICE ALERT, EVENT HANDLER, NOTIFICATION
// lines with their times.
func (ic *icinga) compat(node string) []string {
	files, _ := filepath.Glob(filepath.Join(ic.base[node], "log", "compat", "archives", "*"))
	files = append(files, filepath.Join(ic.base[node], "log", "compat", "icinga.log"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "SERVICE ") || strings.Contains(line, "HOST ALERT") || strings.Contains(line, "HOST NOTIFICATION") {
				if ts, rest, ok := strings.Cut(strings.TrimPrefix(line, "["), "] "); ok {
					if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
						line = time.Unix(n, 0).Format("15:04:05") + " " + rest
					}
				}
				out = append(out, line)
			}
		}
	}
	return out
}

// handlerLog is node's pbxha-eventhandler log (run_dir/eventhandler.log).
func (ic *icinga) handlerLog(node string) []string {
	b, _ := os.ReadFile(filepath.Join(ic.l.HostDir(node), "run", "pbxha", "eventhandler.log"))
	return slices.DeleteFunc(strings.Split(string(b), "\n"), func(s string) bool { return s == "" })
}

// handlerSince is node's handler log from t on, the long Icinga outputs
// cut short.
func (ic *icinga) handlerSince(node string, t time.Time) []string {
	var out []string
	for _, line := range ic.handlerLog(node) {
		ts, _, _ := strings.Cut(line, " ")
		if at, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err == nil && at.Before(t.Add(-time.Second)) {
			continue
		}
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		out = append(out, line)
	}
	return out
}

// handlerCall is the time of node's first handler line containing all of
// want (zero when none).
func (ic *icinga) handlerCall(node string, want ...string) time.Time {
	for _, line := range ic.handlerLog(node) {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		if at, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err == nil {
			return at
		}
	}
	return time.Time{}
}

// dump logs what both Icingas and handlers did, for a failing test.
func (ic *icinga) dump() {
	for _, n := range lab.Nodes {
		var svcs []string
		for name, s := range ic.services(n) {
			svcs = append(svcs, fmt.Sprintf("  %s: %s", name, s))
		}
		slices.Sort(svcs)
		ic.t.Logf("%s: Icinga's services now:\n%s", n, strings.Join(svcs, "\n"))
		ic.t.Logf("%s: Icinga's compat log:\n  %s", n, strings.Join(tail(ic.compat(n), 60), "\n  "))
		ic.t.Logf("%s: eventhandler.log:\n  %s", n, strings.Join(tail(ic.handlerLog(n), 60), "\n  "))
		b, _ := os.ReadFile(filepath.Join(ic.l.HostDir(n), "log", "icinga2.log"))
		var warn []string
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, "warning/") || strings.Contains(line, "critical/") {
				warn = append(warn, line)
			}
		}
		ic.t.Logf("%s: Icinga's warnings:\n  %s", n, strings.Join(tail(warn, 20), "\n  "))
	}
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
