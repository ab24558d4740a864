package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/db/dbtest"
	"pbxha/lib/plugin"
)

const secret = "PBXHA-SECRET-zebra-4711"

// TestBinary runs the built plugin as Icinga does against servers on
// loopback that refuse the login quoting the password: exit 2, the
// server's message on the first line, valid perfdata, nothing on stderr,
// the password nowhere, even at -vvv.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "check_pbx_db_query")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(state, cluster.State{Node: "n", Role: cluster.Master, Epoch: 1, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{
		"mysql": dbtest.MySQLRefuses(t, 1045, "28000", "Access denied for user 'pbx' ("+secret+")"),
		"pgsql": dbtest.PGRefuses(t, "28P01", "password authentication failed for user \"pbx\" ("+secret+")"),
	}
	cfg := fmt.Sprintf("state_file = %q\n", state)
	for d, addr := range servers {
		host, port, _ := net.SplitHostPort(addr)
		cfg += fmt.Sprintf("[%s]\nhost = %q\nport = %s\ndatabase = \"pbx\"\nuser = \"pbx\"\ntls = \"disable\"\n", d, host, port)
	}
	cfgPath := filepath.Join(dir, "cluster.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o640)
	for d := range servers {
		cmd := exec.Command(bin, "--config", cfgPath, "--role", "any", "--driver", d, "-vvv")
		cmd.Env = append(os.Environ(), "PBXHA_DB_PASSWORD="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%s: %v\n%s", d, err, stdout.String())
		}
		first, _, _ := strings.Cut(stdout.String(), "\n")
		if !strings.HasPrefix(first, "PBX_DB_QUERY CRITICAL - connecting to "+d+" at "+servers[d]+" as pbx: ") || !strings.Contains(first, "********") {
			t.Fatalf("%s: %q", d, first)
		}
		_, perf, _ := strings.Cut(first, " | ")
		if _, err := plugin.SplitPerfdata(perf); err != nil || perf == "" {
			t.Fatalf("%s: perfdata %q: %v", d, perf, err)
		}
		if stderr.Len() > 0 || strings.Contains(stdout.String(), secret) {
			t.Fatalf("%s: stderr %q, stdout\n%s", d, stderr.String(), stdout.String())
		}
	}
}
