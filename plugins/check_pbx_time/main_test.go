package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"pbxha/lib/ntptime/chronydtest"
	"pbxha/lib/plugin"
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

// build compiles this plugin once per test run.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "check_pbx_time")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "check_pbx_time")
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
	cmd.Env = append(os.Environ(), "PBXHA_CONFIG=")
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

var offsetPerf = regexp.MustCompile(`(?:^|[ |])'?offset'?=(-?[0-9.]+)s`)

func offsetOf(t *testing.T, first string) float64 {
	t.Helper()
	m := offsetPerf.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no offset perfdata in %q", first)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// TestBinaryAgainstChronydAndCheckNTPTime runs the built plugin and the
// monitoring-plugins' check_ntp_time against the same real chronyd, once
// with a sane clock and once 300 s ahead: same state, same offset.
func TestBinaryAgainstChronydAndCheckNTPTime(t *testing.T) {
	bin := build(t)
	const peer = "/usr/lib/nagios/plugins/check_ntp_time"
	_, err := os.Stat(peer)
	chronydtest.Need(t, peer+" is not installed (Debian package monitoring-plugins-basic)", err == nil)

	for _, tc := range []struct {
		name   string
		offset string
		want   float64
		code   int
		state  string
	}{
		{"healthy", "", 0, 0, "OK"},
		{"300 s ahead", "+300s", 300, 2, "CRITICAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := chronydtest.Start(t, chronydtest.Options{Serve: true, Offset: tc.offset})
			host, port, _ := net.SplitHostPort(d.NTPAddr)

			code, first := runBin(t, bin, "-H", d.NTPAddr, "-w", "0.5", "-c", "1")
			if code != tc.code || !strings.HasPrefix(first, "PBX_TIME "+tc.state+" - "+d.NTPAddr+": offset ") {
				t.Fatalf("check_pbx_time: %d %q", code, first)
			}
			_, perf, _ := strings.Cut(first, " | ")
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Fatalf("perfdata %q: %v", perf, err)
			}
			ours := offsetOf(t, first)
			if math.Abs(ours-tc.want) > 2 {
				t.Fatalf("offset %v, want %v±2", ours, tc.want)
			}

			pcode, pfirst := runBin(t, peer, "-H", host, "-p", port, "-w", "0.5", "-c", "1")
			t.Logf("check_ntp_time: %s", pfirst)
			t.Logf("check_pbx_time: %s", first)
			if pcode != code {
				t.Fatalf("check_ntp_time exits %d (%q), we exit %d", pcode, pfirst, code)
			}
			if theirs := offsetOf(t, pfirst); math.Abs(theirs-ours) > 0.5 {
				t.Fatalf("check_ntp_time measures %v, we %v", theirs, ours)
			}
		})
	}
}

func TestBinaryUsageAndHelp(t *testing.T) {
	bin := build(t)
	if code, first := runBin(t, bin, "--help"); code != 3 || first != "check_pbx_time (pbxha) dev" {
		t.Fatalf("--help: %d %q", code, first)
	}
	if code, first := runBin(t, bin, "-H", "a b"); code != 3 || !strings.HasPrefix(first, "PBX_TIME UNKNOWN - usage: flag -H/--host: ") {
		t.Fatalf("bad -H: %d %q", code, first)
	}
}
