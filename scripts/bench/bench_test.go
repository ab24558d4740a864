package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{4, 1, 3, 2}, 0.5, 2.5},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9, 9},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 1, 10},
		{[]float64{5}, 0.9, 5},
		{nil, 0.5, 0},
	}
	for _, tt := range tests {
		if got := quantile(tt.xs, tt.q); got != tt.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
		}
	}
}

func TestExits(t *testing.T) {
	s := sideResult{samples: []sample{{exit: 3}, {exit: 0}, {exit: 0}}}
	if got, want := s.exits(), "0×2, 3×1"; got != want {
		t.Errorf("exits() = %q, want %q", got, want)
	}
	if s.allExit(0) || !s.anyExit(3) {
		t.Errorf("allExit(0)/anyExit(3) wrong for %v", s.samples)
	}
}

func TestDisplayCommandHidesTempDir(t *testing.T) {
	s := side{argv: []string{"/x/bin/check_pbx_raid", "--sysfs", filepath.Join(os.TempDir(), "pbxbench-123", "sys")}}
	if got, want := displayCommand(s), "check_pbx_raid --sysfs $TMP/sys"; got != want {
		t.Errorf("displayCommand = %q, want %q", got, want)
	}
}

// TestRunOnceMeasures runs a real command: a harness that reported zero
// CPU or a wrong exit code would make every ratio meaningless.
func TestRunOnceMeasures(t *testing.T) {
	smp, first, err := runOnce(side{argv: []string{"/bin/sh", "-c", "echo hi; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 2"}})
	if err != nil {
		t.Fatal(err)
	}
	if smp.exit != 2 || first != "hi" || smp.cpu <= 0 || smp.wall < smp.cpu/4 || smp.rss <= 0 {
		t.Errorf("runOnce = %+v, first %q", smp, first)
	}
}

func TestRSSToolFloor(t *testing.T) {
	if !executable(rssTool) {
		t.Skipf("%s not installed; the harness falls back to ru_maxrss and says so", rssTool)
	}
	rss, err := rssOnce(side{argv: []string{"/bin/sh", "-c", "exit 1"}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A small C program must not look as big as the Go harness.
	if rss <= 0 || rss > 4 {
		t.Errorf("peak RSS of sh = %.2f MiB, want between 0 and 4", rss)
	}
}

func samples(wallMS, cpuMS, rssMiB float64, exit, n int) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{wall: time.Duration(wallMS * 1e6), cpu: time.Duration(cpuMS * 1e6), rss: rssMiB, exit: exit}
	}
	return out
}

// A check with no peer is judged against the absolute target
// alone: AMI's 5 ms of CPU.
func TestRatioRowNoPeer(t *testing.T) {
	r := pairResult{pair: pair{name: "ami", noPeer: true, cpuMS: 5}}
	r.ours.samples = samples(15, 17, 7, 0, 5)
	row, notes := ratioRow(r)
	for _, want := range []string{"ours alone", "ours p50 15.00 ms (no target)", "ours p50 **17.00 ms** (≤5 ms: MISS)", "max 7.0 MiB (≤15: ok)"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	if len(notes) != 0 {
		t.Errorf("notes %v for an all-OK check", notes)
	}
	r.ours.samples = samples(15, 17, 7, 2, 5)
	if row, notes := ratioRow(r); !strings.Contains(row, "not OK") || len(notes) != 1 {
		t.Errorf("a CRITICAL check alone: row %q, notes %v", row, notes)
	}
}

// The dead-master pair has a ratio and an absolute wall target; the
// database pairs a 20 MiB RSS ceiling instead of 15.
func TestRatioRowAbsoluteTargets(t *testing.T) {
	r := pairResult{pair: pair{name: "icmp-dead", wallMS: 600, rssMiB: 20}}
	r.ours.samples = samples(418, 34, 18, 2, 5)
	r.peer.samples = samples(1000, 5, 2, 2, 5)
	row, notes := ratioRow(r)
	for _, want := range []string{"**0.42×** (≤1.1× vs C: ok); ours p50 **418.00 ms** (≤600 ms: ok)", "**6.80×** (≤1.1× vs C: MISS)", "ours max 18.0 MiB (≤20: ok)"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	if len(notes) != 0 {
		t.Errorf("notes %v, want none: both sides said CRITICAL", notes)
	}
	r.rssMiB = 0
	if row, _ := ratioRow(r); !strings.Contains(row, "ours max 18.0 MiB (≤15: MISS)") {
		t.Errorf("default ceiling not applied: %q", row)
	}
}

func TestReportSections(t *testing.T) {
	local := pairResult{pair: pair{name: "disk"}}
	local.ours.samples, local.peer.samples = samples(10, 10, 5, 0, 3), samples(5, 5, 2, 0, 3)
	inLab := pairResult{pair: pair{name: "sip", group: groupLab, note: "one OPTIONS"}}
	inLab.ours.samples, inLab.peer.samples = samples(15, 17, 8, 0, 3), samples(17, 7, 4, 0, 3)
	var b strings.Builder
	report(&b, options{n: 3}, machineInfo{}, []pairResult{local, inLab}, nil, "")
	out := b.String()
	order := []string{"### Local checks", "| disk |", "### Network checks, in the lab", "| sip |", "### Failover", "<!-- failover:", "Notes:", "- sip: one OPTIONS"}
	last := -1
	for _, s := range order {
		i := strings.Index(out, s)
		if i <= last {
			t.Fatalf("%q missing or out of order in:\n%s", s, out)
		}
		last = i
	}
}

// Without a lab every lab row is n/a with the reason, and nothing panics.
// The peers that could take a password on argv (-p) never get one.
func TestLabPairs(t *testing.T) {
	lf := &labFixture{why: "no lab here", ns: "pbxlab-node2", cfg: "/x/cluster.toml", myCnf: "/t/my.cnf", pgPass: "/t/pgpass"}
	ps := labPairs(options{bin: t.TempDir(), peers: "/usr/lib/nagios/plugins"}, lf)
	if len(ps) != len(labPairNames) {
		t.Fatalf("%d lab pairs, %d names", len(ps), len(labPairNames))
	}
	for i, p := range ps {
		if p.name != labPairNames[i] || p.group != groupLab {
			t.Errorf("pair %d is %q (group %q), want %q in the lab", i, p.name, p.group, labPairNames[i])
		}
		if p.ours.missing == "" || p.peer.missing == "" {
			t.Errorf("%s: ran without a lab (ours %q, peer %q)", p.name, p.ours.missing, p.peer.missing)
		}
		if p.ours.netns != lf.ns {
			t.Errorf("%s: ours runs in %q, want %q", p.name, p.ours.netns, lf.ns)
		}
		if !p.noPeer && p.peer.netns != lf.ns {
			t.Errorf("%s: peer runs in %q, want %q", p.name, p.peer.netns, lf.ns)
		}
		if p.noPeer && !strings.HasPrefix(p.peer.missing, "no peer: ") {
			t.Errorf("%s: no-peer row says %q", p.name, p.peer.missing)
		}
		switch filepath.Base(p.peer.label) {
		case "check_mysql", "check_mysql_query", "check_pgsql":
			for _, a := range p.peer.argv {
				if a == "-p" || strings.HasPrefix(a, "--password") {
					t.Errorf("%s: %s gets a password on argv: %v", p.name, p.peer.label, p.peer.argv)
				}
			}
		}
	}
}

func TestLocalPairNames(t *testing.T) {
	ps := pairs(options{bin: t.TempDir(), peers: t.TempDir()}, &fixtures{})
	if len(ps) != len(localPairNames) {
		t.Fatalf("%d local pairs, %d names", len(ps), len(localPairNames))
	}
	for i, p := range ps {
		if p.name != localPairNames[i] || p.group != "" {
			t.Errorf("pair %d is %q (group %q), want %q", i, p.name, p.group, localPairNames[i])
		}
	}
}

func TestRunInNetnsWithoutNamespace(t *testing.T) {
	smp, _, err := runOnce(side{argv: []string{"/bin/sh", "-c", "exit 3"}})
	if err != nil || smp.exit != 3 || smp.wall <= 0 {
		t.Fatalf("runOnce = %+v, %v", smp, err)
	}
	// A namespace that does not exist is an error, never a silent run on
	// the host.
	if _, _, err := runOnce(side{argv: []string{"/bin/true"}, netns: "pbxbench-no-such-ns"}); err == nil {
		t.Fatal("ran in a namespace that does not exist")
	}
}
