package raid

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSources(t *testing.T) {
	dir := t.TempDir()
	none := filepath.Join(dir, "none")
	mdOK := filepath.Join("testdata", "mdstat", "issue34")
	lumpy := readDir(t, filepath.Join("testdata", "tw_cli", "lumpy"))
	noController := map[string][]byte{"show": []byte("----------\n")}
	cases := []struct {
		name  string
		args  []string
		fake  map[string][]byte // nil: --tw-cli names a missing program
		code  int
		first string
	}{
		{"auto, nothing there", []string{}, nil, 3,
			"PBX_RAID UNKNOWN - no RAID array found: md: no " + none + "; 3ware: " + none + " not found: no such file or directory"},
		{"auto, nothing there, --no-arrays ok", []string{"--no-arrays", "ok"}, nil, 0,
			"PBX_RAID OK - no RAID array found: md: no " + none + "; 3ware: " + none + " not found: no such file or directory"},
		{"auto, md only", []string{"--mdstat", mdOK}, nil, 0, "PBX_RAID OK - md0(imsm container):OK, md127(raid1):UU"},
		{"auto, tw_cli without controller", []string{}, noController, 3,
			"PBX_RAID UNKNOWN - no RAID array found: md: no " + none + "; 3ware: tw_cli show lists no controller"},
		{"auto, both", []string{"--mdstat", mdOK}, lumpy, 1, "PBX_RAID WARNING - c0/u0(RAID-1):REBUILDING 98% (p0:DEGRADED)"},
		{"md,3ware both required, tw_cli missing", []string{"--source", "md,3ware", "--mdstat", mdOK}, nil, 3,
			"PBX_RAID UNKNOWN - 3ware: " + none + " not found: no such file or directory"},
		{"3ware required, no controller", []string{"--source", "3ware"}, noController, 3,
			"PBX_RAID UNKNOWN - 3ware: tw_cli show lists no controller"},
		{"3ware required, tw_cli fails", []string{"--source", "3ware"}, map[string][]byte{}, 3,
			"PBX_RAID UNKNOWN - 3ware: tw_cli show: exit status 1: Error: (fake tw_cli) nothing recorded for: show"},
		{"md required, no mdstat", []string{"--source", "md"}, nil, 3,
			"PBX_RAID UNKNOWN - md: open " + none + ": no such file or directory"},
		{"md required, mdstat unparsable", []string{"--source", "md", "--mdstat", filepath.Join("testdata", "tw_cli", "lumpy", "show")}, nil, 3,
			"PBX_RAID UNKNOWN - md: testdata/tw_cli/lumpy/show: parsing mdstat: "},
		{"usage: bad source", []string{"--source", "megaraid"}, nil, 3,
			`PBX_RAID UNKNOWN - usage: flag --source: "megaraid" is not auto, md, 3ware or md,3ware`},
		{"usage: auto combined", []string{"--source", "auto,md"}, nil, 3,
			`PBX_RAID UNKNOWN - usage: flag --source: auto cannot be combined, got "auto,md"`},
		{"usage: bad no-arrays", []string{"--no-arrays", "fine"}, nil, 3,
			`PBX_RAID UNKNOWN - usage: flag --no-arrays: `},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tw := none
			if tc.fake != nil {
				tw = writeFake(t, tc.fake)
			}
			args := append([]string{"--mdstat", none, "--sysfs", dir, "--tw-cli", tw}, tc.args...)
			code, first, _, rest := execute(t, args...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Errorf("got %d %q\nwant %d %q...\n%s", code, first, tc.code, tc.first, strings.Join(rest, "\n"))
			}
		})
	}
}

// The check applies to the master: without --role it asks lib/cluster,
// which needs this node's state file.
func TestDefaultRoleIsMaster(t *testing.T) {
	if s := Spec(); s.DefaultRole != "master" || s.Gate == nil {
		t.Fatalf("role %q, gate %v", s.DefaultRole, s.Gate != nil)
	}
}

// hangingTWCLI starts a child that would outlive it and then hangs, as a
// tw_cli stuck on a wedged controller does; it records the child's pid.
const hangingTWCLI = `#!/bin/sh
sleep 30 &
echo $! > "$(dirname "$0")/child.pid"
wait
`

func writeHanging(t *testing.T) (path string, childPID func() (int, bool)) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "tw_cli")
	if err := os.WriteFile(path, []byte(hangingTWCLI), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, func() (int, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return 0, false // not written yet (the shell creates, then writes)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return pid, true
	}
}

// alive says whether pid runs (a zombie waiting for its reaper is dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z") && syscall.Kill(pid, 0) == nil
}

// awaitDeath gives the kernel a moment to deliver the SIGKILL.
func awaitDeath(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("tw_cli's child %d survived the deadline", pid)
	}
}

func TestHangingTWCLITimesOut(t *testing.T) {
	// every script is written before anything runs: a process forked by a
	// check that is still starting at its deadline would inherit the
	// write descriptor of a script written meanwhile, and exec of that
	// script would fail with ETXTBSY
	type fake struct {
		path string
		pid  func() (int, bool)
	}
	fakes := map[string]fake{}
	for _, to := range []string{"1", "1:unknown"} {
		p, pid := writeHanging(t)
		fakes[to] = fake{p, pid}
	}
	for _, tc := range []struct {
		t     string
		code  int
		first string
	}{
		{"1", 2, "PBX_RAID CRITICAL - timed out after 1s while running tw_cli show"},
		{"1:unknown", 3, "PBX_RAID UNKNOWN - timed out after 1s while running tw_cli show"},
	} {
		fake, childPID := fakes[tc.t].path, fakes[tc.t].pid
		code, first, _, _ := execute(t, "--source", "3ware", "--tw-cli", fake, "-t", tc.t)
		if code != tc.code || first != tc.first {
			t.Fatalf("-t %s: %d %q", tc.t, code, first)
		}
		// on a loaded machine the deadline may come before the fake
		// started its child; TestToolRunnerKillsProcessGroup covers the
		// kill deterministically
		if pid, ok := childPID(); ok {
			awaitDeath(t, pid)
		}
	}
}

// The runner itself returns when its context ends, with the context's
// error, and leaves no process behind, whatever Execute does around it.
func TestToolRunnerKillsProcessGroup(t *testing.T) {
	fake, childPID := writeHanging(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := toolRunner(fake)(ctx, "show")
		done <- err
	}()
	pid, ok := 0, false
	for i := 0; i < 500 && !ok; i++ {
		time.Sleep(10 * time.Millisecond)
		pid, ok = childPID()
	}
	if !ok {
		t.Fatal("the fake tw_cli never started its child")
	}
	select {
	case err := <-done:
		t.Fatalf("returned before the cancel: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "tw_cli show: ") {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the runner did not return after the cancel")
	}
	awaitDeath(t, pid)
}

func TestToolRunnerErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, script string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	quiet := write("quiet", "#!/bin/sh\nexit 4\n")
	if _, err := toolRunner(quiet)(ctx, "show"); err == nil || err.Error() != "quiet show: exit status 4" {
		t.Errorf("quiet: %v", err)
	}
	chatty := write("chatty", "#!/bin/sh\necho 'Error: (CLI:003) Specified controller does not exist.|x'\nexit 1\n")
	if _, err := toolRunner(chatty)(ctx, "info", "c9"); err == nil || err.Error() != "chatty info c9: exit status 1: Error: (CLI:003) Specified controller does not exist./x" {
		t.Errorf("chatty: %v", err)
	}
	flood := write("flood", "#!/bin/sh\nhead -c 2000000 /dev/zero\n")
	if _, err := toolRunner(flood)(ctx, "show"); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("flood: %v", err)
	}
	if _, err := findTool(dir); err == nil || !strings.Contains(err.Error(), "is not an executable file") {
		t.Errorf("dir: %v", err)
	}
	if _, err := findTool("no-such-tw_cli-here"); err == nil || err.Error() != "no-such-tw_cli-here not found on PATH (give its path with --tw-cli)" {
		t.Errorf("PATH: %v", err)
	}
	t.Setenv("PATH", dir)
	if p, err := findTool("quiet"); err != nil || p != quiet {
		t.Errorf("PATH lookup: %q %v", p, err)
	}
}
