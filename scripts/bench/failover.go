package main

// The event handler's own speed: a master-down promote on node2, as Icinga
// runs it, repeated; the times come from the handler's record of its last
// promote (last-failover.json), which it measures from its own clock.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pbxha/lib/failover"
	"pbxha/testharness/lab"
)

// failoverRuns is how many promotes the handler bench makes (each needs a
// lab reset, about a second).
const failoverRuns = 9

// failoverBench promotes node2 failoverRuns times after `link-down node1
// all` and returns the Failover section's text ("" when it could not run).
func (lf *labFixture) failoverBench(ctx context.Context, o options) string {
	if lf.l == nil || !o.selected("failover") {
		return ""
	}
	l := lf.l
	fmt.Fprintln(os.Stderr, "bench: failover (lab) ...")
	var startup, vip, garp, svc, wall []float64
	var errs []string
	for i := 0; i < failoverRuns; i++ {
		if err := l.Reset(ctx); err != nil {
			errs = append(errs, "reset: "+err.Error())
			break
		}
		if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
			errs = append(errs, "fault: "+err.Error())
			break
		}
		hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := l.Command(hctx, lab.Node2, absBin(o.bin, "pbxha-eventhandler"), "handle", "--config", l.ConfigPath(lab.Node2),
			"--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3")
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(t0)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("handle: %v: %s", err, oneLine(string(out))))
			continue
		}
		lfr, ok := failover.ReadLastFailover(l.StatePath(lab.Node2))
		if !ok {
			errs = append(errs, "no last-failover.json after the promote")
			continue
		}
		startup = append(startup, lfr.StartupMS)
		vip = append(vip, lfr.StartupMS+lfr.VIPMS)
		garp = append(garp, lfr.StartupMS+lfr.GARPMS)
		svc = append(svc, lfr.StartupMS+lfr.ServicesMS)
		wall = append(wall, float64(d.Microseconds())/1000)
	}
	if err := l.Reset(ctx); err != nil {
		errs = append(errs, "final reset: "+err.Error())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The event handler promoting node2 after `link-down node1 all`, run as Icinga runs it (`handle --service pbx_master_alive --state CRITICAL --state-type HARD`), %d times (a lab reset before each). "+
		"Times from the handler's process start (Go package init) as the handler records them in `last-failover.json`; Icinga's detection time is not included (see `make bench-failover`).\n\n", len(vip))
	if len(vip) == 0 {
		fmt.Fprintf(&b, "n/a: %s\n", strings.Join(errs, "; "))
		return b.String()
	}
	row := func(name string, xs []float64, target string) {
		fmt.Fprintf(&b, "| %s | %.1f ms | %.1f ms | %.1f ms | %s |\n", name, quantile(xs, 0.5), quantile(xs, 0.95), quantile(xs, 1), target)
	}
	fmt.Fprintf(&b, "| from the handler's start to | median | p95 | max | target |\n|---|---|---|---|---|\n")
	row("its promote starting (config, lock, decision)", startup, "")
	row("VIP bound", vip, "≤ 50 ms median (VIP and first GARP)")
	row("first gratuitous ARP on the wire", garp, "≤ 50 ms median")
	row("PBX services started (databases promoted first)", svc, "")
	row("exit (waits for the fence's SSH connect timeout to a dead master, then the mail)", wall, "")
	fmt.Fprintf(&b, "\nThe VIP waits for ARP duplicate address detection (40 ms listening, run beside the replicas' lag check); the fence of the unreachable old master runs in the background and only delays the exit.\n")
	if len(errs) > 0 {
		fmt.Fprintf(&b, "\nErrors: %s\n", strings.Join(errs, "; "))
	}
	return b.String()
}

func absBin(dir, name string) string {
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return filepath.Join(dir, name)
	}
	return p
}
