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

	"pbxha/lib/plugin"
	"pbxha/lib/sip/kamailiotest"
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
		dir, err := os.MkdirTemp("", "check_pbx_sip")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "check_pbx_sip")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// runBin runs the plugin and returns its exit code, first line, whole
// stdout and stderr.
func runBin(t *testing.T, args ...string) (int, string, string, string) {
	t.Helper()
	cmd := exec.Command(build(t), args...)
	cmd.Env = append(os.Environ(), "PBXHA_CONFIG=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, string(out), stderr.String()
}

// TestBinary: the built plugin against a real Kamailio, a silent peer and
// a closed port. Icinga shows stderr as output: nothing may go there, not
// even sipgo's logging at -vvv.
func TestBinary(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.RouteByUser)
	port := strconv.Itoa(k.Port)
	pit := kamailiotest.StartUDPTarpit(t)
	_, pitPort, _ := net.SplitHostPort(pit.Addr)
	closed := strconv.Itoa(kamailiotest.ClosedPort(t))
	cases := []struct {
		args  []string
		code  int
		first string
	}{
		{[]string{"-H", "127.0.0.1", "-p", port}, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:" + port + "/udp in "},
		{[]string{"-H", "127.0.0.1", "-p", port, "--transport", "tcp", "-vvv"}, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:" + port + "/tcp in "},
		{[]string{"-H", "127.0.0.1", "-p", port, "--to-user", "missing"}, 2, "PBX_SIP CRITICAL - SIP 404 Not Found from 127.0.0.1:" + port + "/udp (accepted: 200) | rtt="},
		{[]string{"-H", "127.0.0.1", "-p", port, "--to-user", "missing", "--accept", "200,404"}, 0, "PBX_SIP OK - SIP 404 Not Found from "},
		{[]string{"-H", "127.0.0.1", "-p", pitPort, "-t", "1", "-vvv"}, 2, "PBX_SIP CRITICAL - no SIP response after 0.9s from 127.0.0.1:" + pitPort + "/udp (sent 2 times) | rtt=U;;;0 code=U;;;0;699"},
		{[]string{"-H", "127.0.0.1", "-p", closed, "-vvv"}, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + closed + "/udp: ICMP port unreachable: nothing listens on that port | "},
		{[]string{"-H", "127.0.0.1", "-p", closed, "--transport", "tcp"}, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + closed + "/tcp: connection refused: nothing listens on that port | "},
	}
	for _, tc := range cases {
		code, first, out, stderr := runBin(t, append(tc.args, "--role", "any")...)
		t.Logf("%v: %s", tc.args, first)
		if code != tc.code || !strings.HasPrefix(first, tc.first) {
			t.Errorf("%v: exit %d, %q\nwant exit %d, %q\n%s", tc.args, code, first, tc.code, tc.first, out)
		}
		if stderr != "" {
			t.Errorf("%v: wrote to stderr: %q", tc.args, stderr)
		}
	}
}

func TestBinaryUsageAndHelp(t *testing.T) {
	if code, first, _, _ := runBin(t, "--help"); code != 3 || first != "check_pbx_sip (pbxha) dev" {
		t.Fatalf("--help: %d %q", code, first)
	}
	if code, first, _, _ := runBin(t, "-H", "127.0.0.1", "--accept", "1xx"); code != 3 || !strings.HasPrefix(first, `PBX_SIP UNKNOWN - usage: invalid argument "1xx" for "--accept" flag`) {
		t.Fatalf("bad --accept: %d %q", code, first)
	}
	// The default role is master: outside a cluster that cannot be told.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cluster.toml")
	os.WriteFile(cfg, []byte("state_file = \""+filepath.Join(dir, "state.json")+"\"\n"), 0o644)
	if code, first, _, _ := runBin(t, "-H", "127.0.0.1", "--config", cfg); code != 3 || !strings.HasPrefix(first, "PBX_SIP UNKNOWN - cannot tell this node's role: no state file ") {
		t.Fatalf("no state file: %d %q", code, first)
	}
}
