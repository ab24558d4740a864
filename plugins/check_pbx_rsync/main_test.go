package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/rsyncd/rsyncdtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary build compiled.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "check_pbx_rsync")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "check_pbx_rsync")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// runBin runs a plugin binary and returns its exit code and first line.
func runBin(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PBXHA_CONFIG=", "RSYNC_PASSWORD=")
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return code, first
}

// TestBinaryBesideCheckTCP runs the built plugin and monitoring-plugins'
// check_tcp -e '@RSYNCD:' against the same real daemon, a closed port and
// a silent one: the same state each time.
func TestBinaryBesideCheckTCP(t *testing.T) {
	bin := build(t)
	const peer = "/usr/lib/nagios/plugins/check_tcp"
	if _, err := os.Stat(peer); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s is missing (Debian package monitoring-plugins-basic)", peer)
		}
		t.Skipf("%s is missing", peer)
	}
	d := rsyncdtest.Start(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strconv.Itoa(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	silentPort := strconv.Itoa(silent.Addr().(*net.TCPAddr).Port)

	for _, tc := range []struct {
		name, port string
		code       int
		ours       string
	}{
		{"daemon", strconv.Itoa(d.Port), 0, "PBX_RSYNC OK - rsyncd " + d.Addr + " protocol "},
		{"closed port", closedPort, 2, "PBX_RSYNC CRITICAL - connecting to 127.0.0.1:" + closedPort + ": connection refused"},
		{"silent port", silentPort, 2, "PBX_RSYNC CRITICAL - waiting for the greeting from 127.0.0.1:" + silentPort + ": no answer within 0.8s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, first := runBin(t, bin, "--role", "any", "-H", "127.0.0.1", "-p", tc.port, "-m", "open", "-t", "1")
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v with -t 1", el)
			}
			if code != tc.code || !strings.HasPrefix(first, tc.ours) {
				t.Fatalf("check_pbx_rsync: %d %q, want %d %q", code, first, tc.code, tc.ours)
			}
			if _, perf, ok := strings.Cut(first, " | "); ok {
				if _, err := plugin.SplitPerfdata(perf); err != nil {
					t.Fatalf("perfdata %q: %v", perf, err)
				}
			}
			pcode, pfirst := runBin(t, peer, "-H", "127.0.0.1", "-p", tc.port, "-e", "@RSYNCD:", "-t", "1")
			t.Logf("check_tcp:       %s", pfirst)
			t.Logf("check_pbx_rsync: %s", first)
			if pcode != code {
				t.Fatalf("check_tcp exits %d (%q), we exit %d", pcode, pfirst, code)
			}
		})
	}
}
