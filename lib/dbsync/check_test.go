package dbsync

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

const secret = "PBXHA-SECRET-zebra-4711"

func node(t *testing.T, role, sections string) string {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(state, cluster.State{Node: "node2", Role: role, Epoch: 1, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("node = \"node2\"\nstate_file = %q\n%s", state, sections)), 0o640); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func section(name, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("[%s]\nhost = %q\nport = %s\ndatabase = \"pbx\"\nuser = \"pbx\"\ntls = \"disable\"\n", name, host, port)
}

func execute(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := plugin.Execute(Spec(), args, &out)
	return code, out.String()
}

func TestConnectFailureAndPassword(t *testing.T) {
	t.Setenv(db.PasswordEnv, secret)
	my := dbtest.MySQLRefuses(t, 1045, "28000", "Access denied (password "+secret+")")
	pg := dbtest.PGRefuses(t, "28P01", "password authentication failed ("+secret+")")
	cfg := node(t, cluster.Slave, section("mysql", my)+section("pgsql", pg))
	for _, d := range []string{"mysql", "pgsql"} {
		code, out := execute(t, "--config", cfg, "--driver", d, "-vvv", "--primary-host", "127.0.0.1")
		first, _, _ := strings.Cut(out, "\n")
		if strings.Contains(out, secret) || code != 2 || !strings.HasPrefix(first, "PBX_DB_SYNC CRITICAL - connecting to "+d+" at 127.0.0.1:") ||
			!strings.HasSuffix(first, "| lag_seconds=U;30;120 server_lag_seconds=U;30;120") {
			t.Errorf("%s: %d\n%s", d, code, out)
		}
	}
}

func TestUsageAndGate(t *testing.T) {
	cfg := node(t, cluster.Slave, section("mysql", "127.0.0.1:1")+section("pgsql", "127.0.0.1:1"))
	master := node(t, cluster.Master, "")
	cases := []struct {
		args  []string
		code  int
		first string
	}{
		{[]string{"--config", master}, 0, "PBX_DB_SYNC OK - skipped: node is master (applies to slave)"},
		{[]string{"--config", cfg, "--driver", "mysql", "--write-heartbeat"}, 3, "PBX_DB_SYNC UNKNOWN - usage: flag --write-heartbeat needs --primary-host"},
		{[]string{"--config", cfg, "--driver", "mysql", "--connection", "x'; DROP"}, 3, `PBX_DB_SYNC UNKNOWN - usage: flag --connection: "x'; DROP" is not a connection name`},
		{[]string{"--config", cfg, "--driver", "pgsql", "--connection", "a"}, 3, "PBX_DB_SYNC UNKNOWN - usage: flag --connection is for MariaDB/MySQL"},
		{[]string{"--config", cfg, "--driver", "mysql", "--bytes-warning", "100"}, 3, "PBX_DB_SYNC UNKNOWN - usage: flags --bytes-warning/--bytes-critical are for PostgreSQL"},
		{[]string{"--config", cfg, "--null-lag", "maybe"}, 3, `PBX_DB_SYNC UNKNOWN - usage: flag --null-lag: "maybe" is not a state`},
		{[]string{"--config", cfg, "--primary-port", "70000"}, 3, "PBX_DB_SYNC UNKNOWN - usage: flag --primary-port: 70000 is not a port"},
		{[]string{"--config", cfg, "-w", "~:"}, 3, "PBX_DB_SYNC UNKNOWN - usage: give --driver mysql or --driver pgsql"},
	}
	for _, tc := range cases {
		code, out := execute(t, tc.args...)
		if first, _, _ := strings.Cut(out, "\n"); code != tc.code || !strings.HasPrefix(first, tc.first) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, first, tc.code, tc.first)
		}
	}
}

func TestStatusQueries(t *testing.T) {
	cases := []struct {
		mariadb bool
		conn    string
		want    []string
	}{
		{true, "", []string{"SHOW ALL REPLICAS STATUS", "SHOW ALL SLAVES STATUS"}},
		{true, "pbx", []string{"SHOW REPLICA 'pbx' STATUS", "SHOW SLAVE 'pbx' STATUS"}},
		{false, "", []string{"SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}},
		{false, "dr", []string{"SHOW REPLICA STATUS FOR CHANNEL 'dr'", "SHOW SLAVE STATUS FOR CHANNEL 'dr'"}},
	}
	for _, tc := range cases {
		if got := statusQueries(tc.mariadb, tc.conn); strings.Join(got, ";") != strings.Join(tc.want, ";") {
			t.Errorf("%v %q: %q", tc.mariadb, tc.conn, got)
		}
	}
}
