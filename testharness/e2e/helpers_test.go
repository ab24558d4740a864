package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// useLab takes the lab lock, attaches to the running lab and registers a
// reset (which also stops both Icingas) and the unlock at cleanup. Without
// a lab it skips, except under CI=true, where it fails. (A copy of
// testharness/integration's helper.)
func useLab(t *testing.T) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if os.Geteuid() != 0 {
		noLab(t, "the lab needs root")
	}
	unlock, err := lab.Lock(ctx)
	if err != nil {
		noLab(t, "taking the lab lock: "+err.Error())
	}
	l, err := lab.Attach()
	if err != nil {
		unlock()
		noLab(t, "no lab running (make lab-up): "+err.Error())
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

func noLab(t *testing.T, why string) {
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

// binDir is where the built binaries are: $PBXHA_BIN when it holds them
// (make test builds there first), else everything is built once into a
// temporary directory. Icinga runs them from there.
func binDir(t *testing.T) string {
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

// Run is one run of a binary inside a lab host's namespace.
type Run struct {
	Code   int
	First  string
	Out    string
	Stderr string
}

// runIn runs the built binary argv[0] with argv[1:] inside host's
// namespace, bounded by timeout.
func runIn(t *testing.T, l *lab.Lab, host string, timeout time.Duration, argv ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{filepath.Join(binDir(t), argv[0])}, argv[1:]...)
	cmd := l.Command(ctx, host, full...)
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
		r.Code = -1
		r.Stderr += err.Error()
	}
	return r
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
