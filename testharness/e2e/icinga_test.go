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
const checkPing = "/usr/lib/nagios/plugins/check_ping"

// icinga is the two nodes' Icinga 2 instances of one test.
type icinga struct {
	t   *testing.T
	l   *lab.Lab
	bin string
	// base is each node's Icinga folder in the lab (the parent of
	// l.IcingaDataDir): conf/, plugins/, tw_cli/, log/, data/...
	base map[string]string
}

// twCLIScript stands in for 3ware's tw_cli: it prints the file of out/
// named after its arguments ("info c0" -> out/info.c0), out/ being a
// symlink to testdata/tw_cli/ok or /failed. (lib/raid's test fake.)
const twCLIScript = `#!/bin/sh
d=$(dirname "$0")
f=$(printf '%s' "$*" | tr ' /' '..' | sed 's/^\.//')
if [ -n "$f" ] && [ -f "$d/out/$f" ]; then cat "$d/out/$f"; exit 0; fi
echo "Error: (fake tw_cli) nothing recorded for: $*" >&2
exit 1
`

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
	repoConf, err := filepath.Abs("../../icinga-conf")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Glob(filepath.Join(repoConf, "*.conf"))
	if err != nil || len(shipped) < 5 {
		t.Fatalf("icinga-conf/*.conf: %v %v", shipped, err)
	}
	zones, err := os.ReadFile(filepath.Join(repoConf, "zones.conf.standalone"))
	if err != nil {
		t.Fatal(err)
	}
	for i, node := range lab.Nodes {
		base := filepath.Dir(l.IcingaDataDir(node))
		ic.base[node] = base
		// Icinga restores its services' states from data/icinga2.state:
		// a HARD CRITICAL left by the last test would never change again.
		for _, d := range []string{"data", "log", "conf", "plugins", "tw_cli"} {
			if err := os.RemoveAll(filepath.Join(base, d)); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range []string{"conf", "plugins", "log/compat", "tw_cli"} {
			if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// PluginDir: the built plugins, and check_ping for the shipped
		// host check (hostalive): as /usr/lib/nagios/plugins holds both
		// on an installed node.
		plugins, _ := filepath.Glob(filepath.Join(ic.bin, "check_pbx_*"))
		if len(plugins) == 0 {
			t.Fatalf("no check_pbx_* in %s", ic.bin)
		}
		plugins = append(plugins, checkPing)
		for _, p := range plugins {
			if err := os.Symlink(p, filepath.Join(base, "plugins", filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
		}
		tw := filepath.Join(base, "tw_cli", "tw_cli")
		if err := os.WriteFile(tw, []byte(twCLIScript), 0o755); err != nil {
			t.Fatal(err)
		}
		ic.setRAID(node, "ok")

		h := lab.Hosts[i]
		hosts := fmt.Sprintf(`/* Written by testharness/e2e: this node's Host only (standalone). */
object Host %q {
	import "pbxha-node"
	address = %q
	vars.pbx_cluster_ip = %q
	vars.pbx_config = %q
	vars.pbxha_eventhandler = %q
	vars.pbxha_notify = %q
	vars.pbx_raid = true
	vars.pbx_raid_source = "3ware"
	vars.pbx_raid_tw_cli = %q
	/* The lab runs both MariaDB and PostgreSQL; a site has one. */
	vars.pbx_db_query_driver = "mysql"
	vars.pbx_db_sync_driver = "mysql"
}
`, node, h.TelIP, h.ClusterIP, l.ConfigPath(node), filepath.Join(ic.bin, "pbxha-eventhandler"),
			filepath.Join(ic.bin, "pbxha-notify"), tw)
		var main strings.Builder
		fmt.Fprintf(&main, "/* Written by testharness/e2e for %s. */\n", node)
		fmt.Fprintf(&main, "const PluginDir = %q\n", filepath.Join(base, "plugins"))
		fmt.Fprintf(&main, "const NodeName = %q\nconst ZoneName = NodeName\n", node)
		main.WriteString("include \"zones.conf\"\ninclude <itl>\ninclude <plugins>\n")
		main.WriteString("object CheckerComponent \"checker\" { }\nobject NotificationComponent \"notification\" { }\n")
		// What the test reads: state changes, event handler and
		// notification runs (compat log), every service's current state
		// each second (status.dat).
		fmt.Fprintf(&main, "object CompatLogger \"compatlog\" { log_dir = %q }\n", filepath.Join(base, "log", "compat"))
		fmt.Fprintf(&main, "object StatusDataWriter \"status\" { status_path = %q\n\tobjects_path = %q\n\tupdate_interval = 1s\n}\n",
			filepath.Join(base, "status.dat"), filepath.Join(base, "objects.cache"))
		for _, f := range shipped {
			if filepath.Base(f) != "example-hosts.conf" {
				fmt.Fprintf(&main, "include %q\n", f)
			}
		}
		main.WriteString("include \"hosts.conf\"\n")
		for name, text := range map[string]string{"icinga2.conf": main.String(), "zones.conf": string(zones), "hosts.conf": hosts} {
			if err := os.WriteFile(filepath.Join(base, "conf", name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_ = os.Remove(filepath.Join(base, "status.dat"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(lab.Nodes))
	for i, node := range lab.Nodes {
		wg.Go(func() { errs[i] = l.StartIcinga(ctx, node, filepath.Join(ic.base[node], "conf")) })
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
	src, err := filepath.Abs(filepath.Join("testdata", "tw_cli", which))
	if err != nil {
		ic.t.Fatal(err)
	}
	dir := filepath.Join(ic.base[node], "tw_cli")
	tmp := filepath.Join(dir, "out.new")
	_ = os.Remove(tmp)
	if err := os.Symlink(src, tmp); err != nil {
		ic.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "out")); err != nil {
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
