package main

import (
	"os"
	"path/filepath"
	"testing"
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
