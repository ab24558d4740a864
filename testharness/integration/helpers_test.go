package integration

// Shared helpers for every integration test file in this package. Each
// test file uses these instead of defining its own (one package: duplicate
// names would not compile).

import (
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/testharness/lab"
	"pbxha/testharness/labtest"
)

// Run is one run of a binary inside a lab host's namespace.
type Run = labtest.Run

// useLab takes the lab for this test (labtest.Use).
func useLab(t *testing.T) *lab.Lab { return labtest.Use(t) }

// noLab skips, or fails under CI=true.
func noLab(t *testing.T, why string) { labtest.NoLab(t, why) }

// bin is the path of a built binary.
func bin(t *testing.T, name string) string { return labtest.Bin(t, name) }

// runIn runs the built binary argv[0] inside host's namespace (at most
// 60 s) and fails the test when it cannot be run at all.
func runIn(t *testing.T, l *lab.Lab, host string, argv ...string) Run {
	t.Helper()
	r := labtest.RunIn(t, l, host, 60*time.Second, argv...)
	if r.Err != nil {
		t.Fatalf("running %v in %s: %v", argv, host, r.Err)
	}
	return r
}

// expect asserts the exit code and the first line's prefix, that nothing
// went to stderr, and that the perfdata (if any) is valid.
func expect(t *testing.T, r Run, code int, firstPrefix string) {
	t.Helper()
	if r.Stderr != "" {
		t.Fatalf("wrote to stderr: %q", r.Stderr)
	}
	if r.Code != code || !strings.HasPrefix(r.First, firstPrefix) {
		t.Fatalf("exit %d, first line %q; want exit %d and a first line starting %q\n%s", r.Code, r.First, code, firstPrefix, r.Out)
	}
	if _, perf, ok := strings.Cut(r.First, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("invalid perfdata %q: %v", perf, err)
		}
	}
}
