// Package labtest is what the lab's test packages (testharness/integration,
// testharness/e2e) share: taking the lab for one test, the built binaries,
// and running one of them inside a lab host's namespace.
package labtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// LockWait is how long a test waits for another to give the lab back.
const LockWait = 5 * time.Minute

// Use takes the lab lock, attaches to the running lab and registers a
// reset (which also stops Icinga and a fence watch) and the unlock at
// cleanup. Without a lab it skips, except under CI=true, where an
// unreachable lab is a failure, never a silent skip.
func Use(t testing.TB) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), LockWait)
	defer cancel()
	if os.Geteuid() != 0 {
		NoLab(t, "the lab needs root")
	}
	unlock, err := lab.Lock(ctx)
	if err != nil {
		NoLab(t, "taking the lab lock: "+err.Error())
	}
	l, err := lab.Attach()
	if err != nil {
		unlock()
		NoLab(t, "no lab running (make lab-up): "+err.Error())
	}
	t.Cleanup(func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer rcancel()
		if err := l.Reset(rctx); err != nil {
			t.Errorf("pbxlab reset after %s: %v", t.Name(), err)
		}
		unlock()
	})
	return l
}

// NoLab skips the test for why, or fails it under CI=true.
func NoLab(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// BinDir is where the built binaries are, as an absolute path:
// $PBXHA_BIN when it holds them (make test builds there first), else
// everything is built once into a temporary directory.
func BinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PBXHA_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "pbxha-eventhandler")); err == nil {
			abs, err := filepath.Abs(d)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pbxha-bin-")
		if buildErr != nil {
			return
		}
		// The test packages live two levels below the repository.
		out, err := exec.Command("make", "-C", "../..", "build", "BIN="+buildDir).CombinedOutput()
		if err != nil {
			buildErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building binaries: %v", buildErr)
	}
	return buildDir
}

// Bin is the path of the built binary name.
func Bin(t testing.TB, name string) string { return filepath.Join(BinDir(t), name) }

// Run is one run of a binary inside a lab host's namespace.
type Run struct {
	Code   int    // exit code; -1 when it could not be run (Err says why)
	First  string // the first line of stdout
	Out    string // stdout
	Stderr string // a plugin writes nothing here: Icinga would show it
	Err    error  // running it failed (not its exit code)
}

// RunIn runs the built binary argv[0] with argv[1:] inside host's
// namespace, bounded by timeout. It does not fail the test itself, so it
// may run outside the test's goroutine.
func RunIn(t testing.TB, l *lab.Lab, host string, timeout time.Duration, argv ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{Bin(t, argv[0])}, argv[1:]...)
	return Collect(l.Command(ctx, host, full...))
}

// Collect runs cmd (its Stdout and Stderr are set here) and returns what
// a plugin's caller sees: exit code, first line, stdout, stderr; Err (and
// Code -1) when it could not be run at all.
func Collect(cmd *exec.Cmd) Run {
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Run{Out: stdout.String(), Stderr: stderr.String()}
	r.First, _, _ = strings.Cut(r.Out, "\n")
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		r.Code, r.Err = -1, err
	}
	return r
}
