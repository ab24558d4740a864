package integration

// Shared helpers for every integration test file in this package. Each
// test file uses these instead of defining its own (one package: duplicate
// names would not compile).

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

	"pbxha/lib/plugin"
	"pbxha/testharness/lab"
)

// useLab takes the lab lock, attaches to the running lab and registers a
// reset and the unlock at cleanup. Without a lab it skips — except under
// CI=true, where an unreachable lab is a failure, never a silent skip.
func useLab(t *testing.T) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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

// bin returns the path of a built binary: $PBXHA_BIN/NAME when there (make
// test builds everything first), else everything is built once into a
// temporary directory.
func bin(t *testing.T, name string) string {
	t.Helper()
	if d := os.Getenv("PBXHA_BIN"); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
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
	return filepath.Join(buildDir, name)
}

// Run is one run of a binary inside a lab host's namespace.
type Run struct {
	Code   int
	First  string // the first line of stdout
	Out    string // stdout
	Stderr string // a plugin writes nothing here: Icinga would show it
}

// runIn runs argv inside the host's namespace with a deadline and returns
// the exit code and output. argv[0] is a binary name resolved with bin().
func runIn(t *testing.T, l *lab.Lab, host string, argv ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{bin(t, argv[0])}, argv[1:]...)
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
		t.Fatalf("running %v in %s: %v", argv, host, err)
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
