package plugins_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

var firstLine = regexp.MustCompile(`^PBX_[A-Z_]+ (OK|WARNING|CRITICAL|UNKNOWN)( - [^|\n]*)?( \| .*)?$`)

// binaries returns every plugin binary: from $PBXHA_BIN (make test sets it
// after `make build`), else built here into a temporary directory.
func binaries(t *testing.T) map[string]string {
	t.Helper()
	dirs, err := filepath.Glob("check_pbx_*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no plugin folders found: %v", err)
	}
	binDir := os.Getenv("PBXHA_BIN")
	if binDir == "" {
		binDir = t.TempDir()
	}
	out := map[string]string{}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "main.go")); err != nil {
			continue
		}
		b := filepath.Join(binDir, d)
		if _, err := os.Stat(b); err != nil {
			cmd := exec.Command("go", "build", "-o", b, "./"+d)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("building %s: %v\n%s", d, err, msg)
			}
		}
		out[d] = b
	}
	return out
}

func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PBXHA_CONFIG=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(stdout.String(), "\n")
		return code, first, stdout.String() + stderr.String()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %v did not exit", bin, args)
	}
	return 0, "", ""
}

func TestEveryPluginContract(t *testing.T) {
	bins := binaries(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(state, cluster.State{Node: "node2", Role: cluster.Standby, Epoch: 2, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte("state_file = \""+state+"\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for name, bin := range bins {
		t.Run(name, func(t *testing.T) {
			for _, a := range []string{"-h", "--help"} {
				if code, first, _ := runBin(t, bin, a); code != 3 || !strings.HasPrefix(first, name+" (pbxha) ") {
					t.Errorf("%s: exit %d, first line %q", a, code, first)
				}
			}
			if code, first, _ := runBin(t, bin, "-V"); code != 3 || !strings.HasPrefix(first, name+" (pbxha) ") {
				t.Errorf("-V: exit %d, %q", code, first)
			}
			bad := []struct {
				args []string
				want string
			}{
				{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
				{[]string{"-t", "soon"}, `invalid argument "soon" for "-t, --timeout" flag`},
				{[]string{"--role", "boss"}, `invalid argument "boss" for "--role" flag`},
			}
			for _, b := range bad {
				code, first, all := runBin(t, bin, b.args...)
				if code != 3 || !strings.Contains(first, "UNKNOWN - usage: "+b.want) || !firstLine.MatchString(first) {
					t.Errorf("%v: exit %d, first line %q (all: %q)", b.args, code, first, all)
				}
			}
			// A config that is missing or not TOML: UNKNOWN naming the
			// file (and the line).
			badCfg := filepath.Join(dir, "bad.toml")
			os.WriteFile(badCfg, []byte("node = \"n1\"\n[vip\naddress = 1\n"), 0o640)
			for _, c := range []struct{ path, want string }{
				{filepath.Join(dir, "missing.toml"), "UNKNOWN - reading config: open " + filepath.Join(dir, "missing.toml") + ": no such file or directory"},
				{badCfg, "UNKNOWN - " + badCfg + ": line 3: "},
			} {
				code, first, all := runBin(t, bin, "--config", c.path, "-t", "3")
				if code != 3 || !strings.HasPrefix(first, name2prefix(name)+" "+c.want) {
					t.Errorf("--config %s: exit %d, first line %q, want %q (all: %q)", c.path, code, first, c.want, all)
				}
			}
			// A node in standby is neither master nor slave: every role-bound
			// check skips there, through the state file named in the config.
			for _, role := range []string{plugin.RoleMaster, plugin.RoleSlave} {
				code, first, all := runBin(t, bin, "--config", cfg, "--role", role)
				want := name2prefix(name) + " OK - skipped: node is standby (applies to " + role + ")"
				if code != 0 || first != want {
					t.Errorf("--role %s: exit %d, first line %q, want %q (all: %q)", role, code, first, want, all)
				}
			}
		})
	}
}

// name2prefix is the output prefix a binary must use: check_pbx_disk → PBX_DISK.
func name2prefix(bin string) string {
	return strings.ToUpper(strings.TrimPrefix(bin, "check_"))
}
