package services

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These tests run real processes and read the real /proc.

// uniq is a name no other process on the machine has; comm keeps 15 bytes.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, os.Getpid()%10000000) }

// daemon copies sleep under a new name, so that its comm is that name.
func daemon(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs path with argv; argv[0] may differ from path, as `exec -a`
// does. Start returns after the exec, so /proc shows the new image.
func start(t *testing.T, path string, argv ...string) *exec.Cmd {
	t.Helper()
	c := &exec.Cmd{Path: path, Args: argv}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(c) })
	return c
}

// stop kills and reaps, so no zombie is left behind to be (not) counted.
func stop(c *exec.Cmd) {
	if c.ProcessState == nil {
		c.Process.Kill()
		c.Wait()
	}
}

func liveDeps(t *testing.T) deps {
	d := defaultDeps()
	d.systemdRun = filepath.Join(t.TempDir(), "no-systemd")
	return d
}

func expect(t *testing.T, d deps, code int, first string, args ...string) {
	t.Helper()
	got, line, rest := execute(t, newSpec(d), args...)
	if got != code || line != first {
		t.Errorf("%v:\nexit %d, %q\nwant exit %d, %q\n%s", args, got, line, code, first, rest)
	}
}

func TestLiveCount(t *testing.T) {
	name := uniq("pbxtd")
	bin := daemon(t, name)
	d := liveDeps(t)

	a := start(t, bin, bin, "300")
	expect(t, d, 0, fmt.Sprintf("PBX_SERVICES OK - %s: 1 process (pid %d) | %s=1;;1:;0", name, a.Process.Pid, name),
		"-s", name)

	b := start(t, bin, bin, "300")
	lo, hi := a.Process.Pid, b.Process.Pid
	if lo > hi {
		lo, hi = hi, lo
	}
	expect(t, d, 2, fmt.Sprintf("PBX_SERVICES CRITICAL - %s: 2 processes (pids %d, %d; expected 1) | %s=2;;1;0", name, lo, hi, name),
		"-s", name, "--count", name+"=1")
	expect(t, d, 0, fmt.Sprintf("PBX_SERVICES OK - %s: 2 processes (pids %d, %d) | %s=2;;2:2;0", name, lo, hi, name),
		"-s", name, "--count", name+"=2:2")

	stop(a)
	stop(b)
	expect(t, d, 2, fmt.Sprintf("PBX_SERVICES CRITICAL - %s: 0 processes (expected 1:) | %s=0;;1:;0", name, name),
		"-s", name)
}

func TestLiveArgv0AndCmdline(t *testing.T) {
	name := uniq("pbxsvc-")
	c := start(t, "/bin/sleep", name, "300") // exec -a NAME sleep 300
	pid := c.Process.Pid
	d := liveDeps(t)
	expect(t, d, 0, fmt.Sprintf("PBX_SERVICES OK - svc: 1 process (pid %d) | svc=1;;1:;0", pid),
		"--process", "svc="+name)
	expect(t, d, 0, fmt.Sprintf("PBX_SERVICES OK - svc: 1 process (pid %d) | svc=1;;1:;0", pid),
		"--cmdline", "svc=^"+regexp.QuoteMeta(name)+` 300$`)
	// comm is still sleep's; argv[0] is the only way to this name, and a
	// pattern must match as written.
	expect(t, d, 2, "PBX_SERVICES CRITICAL - svc: 0 processes (expected 1:) | svc=0;;1:;0",
		"--cmdline", "svc=^"+regexp.QuoteMeta(name)+` 30$`)
}

// The check's own command line matches a pattern that names itself; it
// must still count 0, in-process and as a binary started from a shell
// that carries the same pattern.
func TestLiveNeverCountsItself(t *testing.T) {
	own := "me=^" + regexp.QuoteMeta(strings.Join(os.Args, " ")) + "$"
	d := liveDeps(t)
	expect(t, d, 0, "PBX_SERVICES OK - me: 0 processes | me=0;;0;0", "--cmdline", own, "--count", "me=0")

	// Either way of knowing itself is enough...
	d.selfPID = -1
	expect(t, d, 0, "PBX_SERVICES OK - me: 0 processes | me=0;;0;0", "--cmdline", own, "--count", "me=0")
	// ...and without both the pattern finds this process: the assertions
	// above can fail.
	d.selfExe = ""
	expect(t, d, 2, fmt.Sprintf("PBX_SERVICES CRITICAL - me: 1 process (pid %d; expected 0) | me=1;;0;0", os.Getpid()), "--cmdline", own, "--count", "me=0")
}

func TestLiveBinaryNeverCountsItselfOrItsShell(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "check_pbx_services")
	build := exec.Command("go", "build", "-o", bin, "../../plugins/check_pbx_services")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	token := uniq("pbxself")
	run := func(count string) string {
		t.Helper()
		// "; true" keeps sh from exec'ing the check: the shell stays its
		// parent, with the pattern in its own command line.
		script := fmt.Sprintf("%s --role any --mode proc --cmdline 'me=%s' --count me=%s; echo \"exit $?\"; true", bin, token, count)
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), "PBXHA_CONFIG=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		exit := string(out)[strings.LastIndex(string(out), "exit "):]
		return first + " / " + strings.TrimSpace(exit)
	}

	// A real process carrying the token is counted; the check and its
	// shell, which carry it too, are not.
	c := start(t, "/bin/sleep", token, "300")
	want := fmt.Sprintf("PBX_SERVICES OK - me: 1 process (pid %d) | me=1;;1:1;0 / exit 0", c.Process.Pid)
	if got := run("1:1"); got != want {
		t.Errorf("with one process:\n%s\nwant\n%s", got, want)
	}
	stop(c)
	want = "PBX_SERVICES OK - me: 0 processes | me=0;;0;0 / exit 0"
	if got := run("0"); got != want {
		t.Errorf("with none:\n%s\nwant\n%s", got, want)
	}
}

// Another run of the check (Icinga runs checks side by side) carries its
// own pattern too; processes of the check's own executable are left out.
func TestLiveSameExecutableLeftOut(t *testing.T) {
	name := uniq("pbxcp")
	bin := daemon(t, name)
	c := start(t, bin, bin, "300")
	d := liveDeps(t)
	expect(t, d, 0, fmt.Sprintf("PBX_SERVICES OK - x: 1 process (pid %d) | x=1;;1:;0", c.Process.Pid), "--process", "x="+name)
	d.selfExe = bin // as if the copy were this check
	expect(t, d, 2, "PBX_SERVICES CRITICAL - x: 0 processes (expected 1:) | x=0;;1:;0", "--process", "x="+name)
}
