package dbquery

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/db"
	"pbxha/lib/db/dbtest"
	"pbxha/lib/plugin"
)

// secret is a password no message could contain by accident.
const secret = "PBXHA-SECRET-zebra-4711"

// node writes a cluster.toml (with the [mysql] and [pgsql] sections given)
// and a state file of role; it returns the config's path.
func node(t *testing.T, role, sections string) string {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(state, cluster.State{Node: "node1", Role: role, Epoch: 1, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	text := fmt.Sprintf("node = \"node1\"\nstate_file = %q\n%s", state, sections)
	if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func section(t *testing.T, name, addr, password string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	pw := filepath.Join(t.TempDir(), name+".pw")
	os.WriteFile(pw, []byte(password+"\n"), 0o600)
	return fmt.Sprintf("[%s]\nhost = %q\nport = %s\ndatabase = \"pbx\"\nuser = \"pbx\"\npassword = { file = %q }\ntls = \"disable\"\n", name, host, port, pw)
}

func execute(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := plugin.Execute(Spec(), args, &out)
	return code, out.String()
}

// A server whose refusal quotes the password: at -vvv, from every source
// of the password, the output never holds it.
func TestPasswordNeverInOutput(t *testing.T) {
	my := dbtest.MySQLRefuses(t, 1045, "28000", "Access denied for user 'pbx'@'127.0.0.1' (using password: "+secret+")")
	pg := dbtest.PGRefuses(t, "28P01", `password authentication failed for user "pbx" (`+secret+")")
	cfg := node(t, cluster.Master, section(t, "mysql", my, secret)+section(t, "pgsql", pg, secret))
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(secret), 0o600)
	for _, d := range []string{"mysql", "pgsql"} {
		for _, src := range []struct {
			name string
			args []string
			env  string
		}{
			{"cluster.toml", nil, ""},
			{"--password-file", []string{"--password-file", pwFile}, ""},
			{"$" + db.PasswordEnv, nil, secret},
		} {
			t.Run(d+" "+src.name, func(t *testing.T) {
				if src.env != "" {
					t.Setenv(db.PasswordEnv, src.env)
				}
				code, out := execute(t, append([]string{"--config", cfg, "--driver", d, "-vvv"}, src.args...)...)
				if strings.Contains(out, secret) {
					t.Fatalf("the password is in the output:\n%s", out)
				}
				first, _, _ := strings.Cut(out, "\n")
				if code != 2 || !strings.HasPrefix(first, "PBX_DB_QUERY CRITICAL - connecting to "+d+" at 127.0.0.1:") || !strings.Contains(first, "********") {
					t.Fatalf("%d %q", code, first)
				}
				if !strings.Contains(out, "step: connecting to "+d) {
					t.Fatalf("no -vvv step lines:\n%s", out)
				}
			})
		}
	}
}

func TestSilentServerTimesOutNamingTheStep(t *testing.T) {
	cfg := node(t, cluster.Master, section(t, "mysql", dbtest.Silent(t), "x"))
	start := time.Now()
	code, out := execute(t, "--config", cfg, "-t", "0.5")
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
	if first, _, _ := strings.Cut(out, "\n"); code != 2 || !strings.HasPrefix(first, "PBX_DB_QUERY CRITICAL - timed out after 0.5s while connecting to mysql at 127.0.0.1:") {
		t.Fatalf("%d %q", code, first)
	}
}

func TestUsageAndGate(t *testing.T) {
	master := node(t, cluster.Master, "")
	slave := node(t, cluster.Slave, "[mysql]\nuser = \"pbx\"\ndatabase = \"pbx\"\n")
	cases := []struct {
		args  []string
		code  int
		first string
	}{
		{[]string{"--config", slave}, 0, "PBX_DB_QUERY OK - skipped: node is slave (applies to master)"},
		{[]string{"--config", master, "-w", "10"}, 3, "PBX_DB_QUERY UNKNOWN - usage: flags -w/-c apply to --query's value: give --query"},
		{[]string{"--config", master, "--driver", "sqlite"}, 3, `PBX_DB_QUERY UNKNOWN - usage: flag --driver: "sqlite" is not a driver (mysql, pgsql)`},
		{[]string{"--config", master}, 3, "PBX_DB_QUERY UNKNOWN - usage: give --driver mysql or --driver pgsql"},
		{[]string{"--config", master, "--driver", "pgsql"}, 3, "PBX_DB_QUERY UNKNOWN - usage: no user: give -u/--user or set [pgsql] user in " + master},
		{[]string{"--config", master, "--node", ""}, 3, `PBX_DB_QUERY UNKNOWN - usage: flag --node: "" is not a name`},
		{[]string{"--config", master, "--table", "a-b"}, 3, `PBX_DB_QUERY UNKNOWN - usage: flag --table: "a-b" is not a plain lower-case table name`},
		{[]string{"--config", master, "-c", "x"}, 3, `PBX_DB_QUERY UNKNOWN - usage: invalid argument "x" for "-c, --critical" flag`},
	}
	for _, tc := range cases {
		code, out := execute(t, tc.args...)
		if first, _, _ := strings.Cut(out, "\n"); code != tc.code || !strings.HasPrefix(first, tc.first) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, first, tc.code, tc.first)
		}
	}
}
