package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

type options struct {
	bin     string
	peers   string
	n       int
	warmup  int
	out     string
	mdstat  string
	only    string
	lab     bool
	oursEnv envList
}

// envList collects repeated -ours-env KEY=VALUE flags, so the effect of a
// runtime knob (GOGC, GOMAXPROCS, GODEBUG) on our side can be measured with
// the peers unchanged.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding our built checks")
	flag.StringVar(&o.peers, "peers", "/usr/lib/nagios/plugins", "directory holding the monitoring-plugins peers")
	flag.IntVar(&o.n, "n", 30, "measured runs per command")
	flag.IntVar(&o.warmup, "warmup", 3, "warm-up runs per command, not measured")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.StringVar(&o.mdstat, "mdstat", "/work/shared/corpus/raid/mdstat/mdstat-centos6.2", "mdstat fixture both RAID checks read")
	flag.StringVar(&o.only, "only", "", "comma-separated pairs to run (local: "+strings.Join(localPairNames, ",")+"; lab: "+strings.Join(labPairNames, ",")+", failover); default all")
	flag.BoolVar(&o.lab, "lab", true, "also run the network pairs inside the lab (needs root; brings the lab up when it is not)")
	flag.Var(&o.oursEnv, "ours-env", "KEY=VALUE added to our checks' environment only; repeatable")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench: -n must be at least 1 and -warmup not negative")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	tmp, err := os.MkdirTemp("", "pbxbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	env := &fixtures{tmp: tmp}
	defer env.close()
	env.setup(ctx, o)
	loadBefore := loadAvg()

	useRSSTool := executable(rssTool)
	if useRSSTool {
		env.note("Peak RSS: measured in an extra run per round under %s -f %%M (its floor, the RSS of /bin/true, is about 1 MiB); wall and CPU come from the direct runs only.", rssTool)
	} else {
		env.note("Peak RSS: %s is missing, so it is ru_maxrss of the direct runs, which is floored at the harness's own RSS (os/exec uses vfork; at exec the kernel keeps the parent mm's high-water mark): values near %.1f MiB mean \"at most that\".", rssTool, selfHWM())
	}
	var results []pairResult
	for _, p := range pairs(o, env) {
		if !o.selected(p.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", p.name)
		results = append(results, measurePair(o, p, tmp, useRSSTool))
	}
	if o.lab && (o.anySelected(labPairNames) || o.selected("failover")) {
		results = append(results, runLab(ctx, o, env, tmp, useRSSTool)...)
	}

	var w io.Writer = os.Stdout
	var f *os.File
	if o.out != "" {
		if f, err = os.Create(o.out); err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	m := machine(o.bin)
	m.load = loadBefore + " before, " + loadAvg() + " after"
	report(w, o, m, results, env.notes, env.failover)
	if f != nil {
		return f.Close()
	}
	return nil
}

// side is one command of a pair. missing says why it cannot run; the row
// then shows n/a instead of the harness giving up on the other pairs.
type side struct {
	label   string
	argv    []string
	env     []string
	netns   string // run inside this network namespace ("" = the harness's own)
	missing string
}

type pair struct {
	name  string
	group string // "" (local) or groupLab
	ours  side
	peer  side
	perl  bool // the peer is an interpreter's script: "far below", not "at most 1.1x"
	ref   bool // a reference row, not judged against the targets
	// noPeer: no program does this work, the peer side only says why; the
	// row shows our medians and the absolute targets below, no ratio.
	noPeer bool
	// Absolute targets for our side (0: none): the issues set some in ms
	// (a dead master decided within 600 ms, an AMI check in 5 ms of CPU)
	// and a different RSS ceiling for the database checks.
	wallMS, cpuMS, rssMiB float64
	// before runs once before the pair is measured (e.g. a fresh heartbeat
	// for the replica checks); an error marks both sides n/a.
	before func() error
	note   string // how the two sides were matched, for the notes
}

// localPairNames and labPairNames are the -only names, in table order.
var (
	localPairNames = []string{"floor", "disk", "time", "services", "raid"}
	labPairNames   = []string{"icmp", "icmp-dead", "rsync", "rsync-login", "mysql", "mysql-query", "mysql-replica",
		"pgsql", "pgsql-standby", "sip", "ami", "time-lab", "time-peer"}
)

func (o options) selected(name string) bool {
	return o.only == "" || contains(strings.Split(o.only, ","), name)
}

func (o options) anySelected(names []string) bool {
	for _, n := range names {
		if o.selected(n) {
			return true
		}
	}
	return false
}

func pairs(o options, f *fixtures) []pair {
	ours := func(name string, args ...string) side {
		path := filepath.Join(o.bin, name)
		s := side{label: name, argv: append([]string{path}, args...), env: o.oursEnv}
		if !executable(path) {
			s.missing = path + " not built"
		}
		return s
	}
	peer := func(name string, args ...string) side {
		path := filepath.Join(o.peers, name)
		s := side{label: name, argv: append([]string{path}, args...)}
		if !executable(path) {
			s.missing = path + " not installed"
		}
		return s
	}
	blocked := func(s side, why string) side {
		if why != "" && s.missing == "" {
			s.missing = why
		}
		return s
	}

	port := fmt.Sprint(f.ntpPort)
	raidPeer := side{label: "check_raid (Perl)", argv: []string{f.checkRaid, "-p", "mdstat"}, missing: f.raidWhy}

	floor := side{label: "minimal Go program", argv: []string{f.goFloor}, env: o.oursEnv, missing: f.goFloorWhy}
	return []pair{
		{
			name: "floor",
			ours: floor,
			peer: side{label: "/bin/true", argv: []string{"/bin/true"}},
			ref:  true,
		},
		{
			name: "disk",
			ours: ours("check_pbx_disk", "-p", "/", "-w", "80", "-c", "90", "--role", "any"),
			peer: peer("check_disk", "-w", "20%", "-c", "10%", "-p", "/"),
		},
		{
			name: "time",
			ours: blocked(ours("check_pbx_time", "-H", "127.0.0.1:"+port, "--role", "any"), f.ntpWhy),
			peer: blocked(peer("check_ntp_time", "-H", "127.0.0.1", "-p", port), f.ntpWhy),
		},
		{
			name: "services",
			ours: blocked(ours("check_pbx_services", servicesArgs(o.bin, procName)...), f.procWhy),
			peer: blocked(peer("check_procs", "-C", procName, "-c", "1:"), f.procWhy),
		},
		{
			name: "raid",
			ours: blocked(ours("check_pbx_raid", "--mdstat", o.mdstat, "--sysfs", f.emptySysfs, "--source", "md", "--role", "any"), f.mdstatWhy),
			peer: blocked(raidPeer, f.mdstatWhy),
			perl: true,
		},
	}
}

// servicesArgs asks for the benchmark process by name, as check_procs -C
// does.
func servicesArgs(bin, name string) []string {
	return []string{"-s", name, "--role", "any"}
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// selfHWM is the harness's own peak RSS in MiB, from /proc/self/status.
func selfHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
			return kib / 1024
		}
	}
	return 0
}

// loadAvg is the 1-minute load average: other work on a small machine
// moves wall times far more than it moves CPU times, and the reader
// should know how busy the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
