package services

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestMatches(t *testing.T) {
	long := "asterisk-long-daemon-name"
	cases := []struct {
		name string
		s    Service
		p    Proc
		want bool
	}{
		{"comm", Service{Process: "asterisk"}, Proc{Comm: "asterisk", Argv: []string{"/usr/sbin/asterisk", "-f"}}, true},
		{"argv0 base", Service{Process: "mariadbd"}, Proc{Comm: "mysqld", Argv: []string{"/usr/sbin/mariadbd"}}, true},
		{"other", Service{Process: "asterisk"}, Proc{Comm: "bash", Argv: []string{"bash", "-c", "asterisk"}}, false},
		{"prefix is not a match", Service{Process: "aster"}, Proc{Comm: "asterisk", Argv: []string{"asterisk"}}, false},
		{"zombie", Service{Process: "asterisk"}, Proc{Comm: "asterisk", Argv: []string{"asterisk"}, State: "Z"}, false},
		{"kernel thread", Service{Process: "kworker"}, Proc{Comm: "kworker", Argv: nil}, false},
		{"comm cut at 15", Service{Process: long}, Proc{Comm: long[:15], Argv: []string{"/opt/" + long + ": main"}}, true},
		{"cmdline", Service{Cmdline: regexp.MustCompile(`kamailio -f /etc/k\.cfg`)}, Proc{Comm: "kamailio", Argv: []string{"kamailio", "-f", "/etc/k.cfg"}}, true},
		{"cmdline other cfg", Service{Cmdline: regexp.MustCompile(`kamailio -f /etc/k\.cfg`)}, Proc{Comm: "kamailio", Argv: []string{"kamailio", "-f", "/etc/x.cfg"}}, false},
	}
	for _, tc := range cases {
		if got := tc.s.Matches(tc.p); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestEvaluate(t *testing.T) {
	procs := []Proc{
		{PID: 10, Comm: "asterisk", Argv: []string{"asterisk"}},
		{PID: 11, Comm: "kamailio", Argv: []string{"kamailio"}},
		{PID: 12, Comm: "kamailio", Argv: []string{"kamailio"}},
	}
	svcs := []Service{
		{Name: "asterisk", Process: "asterisk", Count: threshold.MustParse("1:")},
		{Name: "kamailio", Process: "kamailio", Count: threshold.MustParse("1")},
		{Name: "mariadb", Process: "mariadbd", Count: threshold.MustParse("1:")},
	}
	r := Evaluate(svcs, procs)
	var out bytes.Buffer
	out.WriteString(r.Format("PBX_SERVICES"))
	want := "PBX_SERVICES CRITICAL - kamailio: 2 processes (pid 11, 12) (expected 1), mariadb: 0 processes (expected 1:) | asterisk=1;;1:;0 kamailio=2;;1;0 mariadb=0;;1:;0\n" +
		"\\_ [OK] asterisk: 1 process (pid 10)\n" +
		"\\_ [CRITICAL] kamailio: 2 processes (pid 11, 12) (expected 1)\n" +
		"\\_ [CRITICAL] mariadb: 0 processes (expected 1:)\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestUnitResult(t *testing.T) {
	cases := []struct {
		u    UnitState
		want plugin.State
	}{
		{UnitState{Name: "a.service", Load: "loaded", Active: "active", Sub: "running"}, plugin.OK},
		{UnitState{Name: "a.service", Load: "loaded", Active: "activating", Sub: "start"}, plugin.Warning},
		{UnitState{Name: "a.service", Load: "loaded", Active: "reloading", Sub: "running"}, plugin.Warning},
		{UnitState{Name: "a.service", Load: "loaded", Active: "failed", Sub: "failed"}, plugin.Critical},
		{UnitState{Name: "a.service", Load: "loaded", Active: "inactive", Sub: "dead"}, plugin.Critical},
		{UnitState{Name: "a.service", Load: "not-found"}, plugin.Critical},
	}
	for _, tc := range cases {
		if got := UnitResult("a", tc.u).State; got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.u, got, tc.want)
		}
	}
}

func execute(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := plugin.Execute(Spec(), append([]string{"--role", "any", "--mode", "proc"}, args...), &out)
	return code, out.String()
}

// Real processes: a copy of sleep under a unique name, started and stopped.
func TestRealProcesses(t *testing.T) {
	dir := t.TempDir()
	daemon := filepath.Join(dir, "pbxtestd")
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(daemon, b, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		c := exec.Command(daemon, "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	wait := func(want string, args ...string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, out := execute(t, args...)
			if strings.HasPrefix(out, want) || time.Now().After(deadline) {
				return out
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if out := wait("PBX_SERVICES CRITICAL - pbxtestd: 0 processes", "-s", "pbxtestd"); !strings.HasPrefix(out, "PBX_SERVICES CRITICAL - pbxtestd: 0 processes (expected 1:)") {
		t.Fatalf("before start: %s", out)
	}
	c1 := start()
	if out := wait("PBX_SERVICES OK", "-s", "pbxtestd"); !strings.HasPrefix(out, "PBX_SERVICES OK - pbxtestd: 1 process") {
		t.Fatalf("one running: %s", out)
	}
	start()
	if out := wait("PBX_SERVICES CRITICAL - pbxtestd: 2", "-s", "pbxtestd", "--count", "pbxtestd=1"); !strings.HasPrefix(out, "PBX_SERVICES CRITICAL - pbxtestd: 2 processes") {
		t.Fatalf("two running, one expected: %s", out)
	}
	if code, out := execute(t, "--cmdline", `pbx=pbxtestd 300$`, "--count", "pbx=2"); code != 0 {
		t.Fatalf("cmdline regex: %d %s", code, out)
	}
	c1.Process.Kill()
	c1.Wait()
	if out := wait("PBX_SERVICES OK - pbxtestd: 1 process", "-s", "pbxtestd"); !strings.HasPrefix(out, "PBX_SERVICES OK - pbxtestd: 1 process") {
		t.Fatalf("after one stopped: %s", out)
	}
}

// The check's own process matches its own --cmdline regex, and is never
// counted.
func TestNeverCountsItself(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "check_pbx_services")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/check_pbx_services").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "--role", "any", "--mode", "proc", "--cmdline", "me=check_pbx_services --role any").Output()
	if !strings.HasPrefix(string(out), "PBX_SERVICES CRITICAL - me: 0 processes") {
		t.Fatalf("counted itself: %s", out)
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no services to check"},
		{[]string{"--cmdline", "x"}, `flag --cmdline: "x" is not NAME=VALUE`},
		{[]string{"--cmdline", "x=("}, "flag --cmdline: x: error parsing regexp"},
		{[]string{"-s", "a", "--count", "b=1"}, `flag --count: no service named "b"`},
		{[]string{"-s", "a", "--count", "a=5:1"}, "flag --count: a: range"},
		{[]string{"-s", "a", "--mode", "upstart"}, `flag --mode: "upstart"`},
	}
	for _, tc := range cases {
		code, out := execute(t, append([]string{"--config", filepath.Join(t.TempDir(), "none.toml")}, tc.args...)...)
		if tc.args == nil {
			code, out = execute(t)
		}
		if code != 3 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %d %q, want %q", tc.args, code, out, tc.want)
		}
	}
}

func TestFromConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cluster.toml")
	os.WriteFile(cfg, []byte("[[services]]\nname = \"init\"\ncmdline = \".\"\ncount = \"1:\"\n"), 0o644)
	if code, out := execute(t, "--config", cfg); code != 0 || !strings.HasPrefix(out, "PBX_SERVICES OK - init: ") {
		t.Fatalf("%d %s", code, out)
	}
}

func TestReadProcsHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadProcs(ctx, "/proc"); err == nil {
		t.Fatal("a cancelled read must fail")
	}
}

func FuzzParseAssignment(f *testing.F) {
	f.Add("kamailio=4:")
	f.Add("=x")
	f.Fuzz(func(t *testing.T, s string) {
		name, value, err := ParseAssignment(s)
		if err != nil {
			return
		}
		if name == "" || value == "" || !strings.Contains(s, name+"="+value) && !strings.Contains(s, "="+value) {
			t.Fatalf("%q -> %q %q", s, name, value)
		}
	})
}
