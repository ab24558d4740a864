package e2e

import (
	"fmt"
	"testing"
	"time"

	"pbxha/testharness/lab"
	"pbxha/testharness/labtest"
)

// Run is one run of a binary inside a lab host's namespace.
type Run = labtest.Run

// useLab takes the lab for this test (labtest.Use); its reset also stops
// both Icingas.
func useLab(t *testing.T) *lab.Lab { return labtest.Use(t) }

// noLab skips, or fails under CI=true.
func noLab(t *testing.T, why string) { labtest.NoLab(t, why) }

// binDir is where the built binaries are; Icinga runs them from there.
func binDir(t *testing.T) string { return labtest.BinDir(t) }

// runIn runs the built binary argv[0] with argv[1:] inside host's
// namespace, bounded by timeout; a run that could not start has code -1
// and the reason in Stderr.
func runIn(t *testing.T, l *lab.Lab, host string, timeout time.Duration, argv ...string) Run {
	t.Helper()
	r := labtest.RunIn(t, l, host, timeout, argv...)
	if r.Err != nil {
		r.Stderr += r.Err.Error()
	}
	return r
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
