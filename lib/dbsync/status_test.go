package dbsync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
)

// parseTSV reads `mariadb -B` / `psql -A -F '\t'` output: a header, rows,
// NULL for NULL, backslash escapes.
func parseTSV(text string) db.Table {
	var t db.Table
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return t
	}
	t.Cols = strings.Split(lines[0], "\t")
	unescape := strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\0`, "\x00")
	for _, l := range lines[1:] {
		var row []*string
		for _, f := range strings.Split(l, "\t") {
			if f == "NULL" {
				row = append(row, nil)
				continue
			}
			v := unescape.Replace(f)
			row = append(row, &v)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func fixture(t *testing.T, name string) db.Table {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseTSV(string(b))
}

// checkOutput asserts what every result must be, whatever the server
// sent: one first line with a known state and valid perfdata.
func checkOutput(t *testing.T, r plugin.Result) string {
	t.Helper()
	out := r.Format("PBX_DB_SYNC")
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "PBX_DB_SYNC "+r.Overall().String()) {
		t.Fatalf("first line %q", first)
	}
	if strings.Count(first, "|") > 1 {
		t.Fatalf("a '|' from the server leaked into %q", first)
	}
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	return first
}

func TestMySQLReplicaFixtures(t *testing.T) {
	cases := []struct {
		file  string
		state plugin.State
		first string // exact first line
		long  string // a line the long output must hold ("" = none asked)
	}{
		{"mariadb-10.11-all-healthy.tsv", plugin.OK,
			"PBX_DB_SYNC OK - replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 0s | server_lag_seconds=0s;30;120", ""},
		{"mariadb-10.11-healthy.tsv", plugin.OK,
			"PBX_DB_SYNC OK - replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 0s | server_lag_seconds=0s;30;120", ""},
		{"mariadb-10.11-all-sql-stopped.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - replication from 198.51.100.1:3306 broken: SQL thread not running (Slave_SQL_Running: No) | server_lag_seconds=U;30;120", ""},
		{"mariadb-10.11-all-primary-down.tsv", plugin.Critical,
			`PBX_DB_SYNC CRITICAL - replication from 198.51.100.1:3306 broken: IO thread not connected (Slave_IO_Running: Connecting): last IO error 2003: error reconnecting to master 'repl@198.51.100.1:3306' - retry-time: 1 maximum-retries: 100000 message: Can't connect to server on '198.51.100.1' (111 "Connection refused") | server_lag_seconds=U;30;120`, ""},
		{"mariadb-10.11-primary-empty.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - not replicating: SHOW REPLICA STATUS is empty (no replication source configured) | server_lag_seconds=U;30;120", ""},
		{"mariadb-11.6-all-multi.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - connection sites: replication from 203.0.113.7:3306 broken: IO thread not connected (Slave_IO_Running: Connecting)",
			`\_ [OK] connection pbx: replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 0s`},
		{"mysql-8.0-replica-healthy.tsv", plugin.OK,
			"PBX_DB_SYNC OK - replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 0s | server_lag_seconds=0s;30;120", ""},
		{"mysql-8.0-replica-sql-error.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - replication from 198.51.100.1:3306 broken: SQL thread not running (Replica_SQL_Running: No): last SQL error 1062: Could not execute Write_rows event on table pbx.cdr; Duplicate entry '42' for key 'cdr.PRIMARY'", ""},
		{"mysql-8.0-channels.tsv", plugin.Warning,
			"PBX_DB_SYNC WARNING - connection dr: replicating from 203.0.113.7:3306, IO and SQL threads running, server lag 45s (warning > 30) | default_server_lag_seconds=0s;30;120 dr_server_lag_seconds=45s;30;120",
			`\_ [OK] connection default: replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 0s`},
		{"mysql-5.7-slave-lag.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - replicating from 198.51.100.1:3306, IO and SQL threads running, server lag 150s (critical > 120) | server_lag_seconds=150s;30;120", ""},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			r := EvaluateMySQL(ParseMySQLStatus(fixture(t, tc.file)), DefaultPolicy())
			first := checkOutput(t, r)
			if r.Overall() != tc.state || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %v %q\nwant %v %q", r.Overall(), first, tc.state, tc.first)
			}
			if tc.long != "" && !strings.Contains(r.Format("PBX_DB_SYNC"), tc.long) {
				t.Fatalf("long output lacks %q:\n%s", tc.long, r.Format("PBX_DB_SYNC"))
			}
		})
	}
}

func TestMySQLReplicaColumnNames(t *testing.T) {
	m := ParseMySQLReplica(fixture(t, "mysql-8.0-replica-healthy.tsv").Row(0))
	if m.IOColumn != "Replica_IO_Running" || m.SQLColumn != "Replica_SQL_Running" || m.LagColumn != "Seconds_Behind_Source" {
		t.Fatalf("MySQL 8.0 names: %+v", m)
	}
	m = ParseMySQLReplica(fixture(t, "mariadb-10.11-all-healthy.tsv").Row(0))
	if m.IOColumn != "Slave_IO_Running" || m.LagColumn != "Seconds_Behind_Master" || m.GTID != "0-1-44" || m.Channel != "" {
		t.Fatalf("MariaDB names: %+v", m)
	}
	// Case differs between servers (Connection_name, Channel_Name).
	m = ParseMySQLReplica(db.NewRow([]string{"CONNECTION_NAME", "slave_io_running", "SLAVE_SQL_RUNNING"}, vals("x", "Yes", "Yes")))
	if m.Channel != "x" || m.IO != "Yes" || m.LagColumn != "" {
		t.Fatalf("case-insensitive lookup: %+v", m)
	}
}

func vals(vs ...string) []*string {
	out := make([]*string, len(vs))
	for i := range vs {
		if vs[i] != "NULL" {
			out[i] = &vs[i]
		}
	}
	return out
}

func TestMySQLEdgeCases(t *testing.T) {
	cols := []string{"Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master", "Last_SQL_Errno", "Last_SQL_Error"}
	p := DefaultPolicy()
	cases := []struct {
		name  string
		cols  []string
		vals  []*string
		p     func(*Policy)
		state plugin.State
		want  string
	}{
		{"NULL lag with threads running is UNKNOWN by default", cols, vals("Yes", "Yes", "NULL", "0", ""), nil, plugin.Unknown,
			"replicating, IO and SQL threads running, server lag unknown (Seconds_Behind_Master is NULL)"},
		{"--null-lag warning", cols, vals("Yes", "Yes", "NULL", "0", ""), func(p *Policy) { p.NullLag = plugin.Warning }, plugin.Warning, "server lag unknown"},
		{"lag that is not a number", cols, vals("Yes", "Yes", "soon", "0", ""), nil, plugin.Unknown, `server lag unknown (Seconds_Behind_Master is "soon")`},
		{"both threads stopped, the SQL error quoted", cols, vals("No", "No", "NULL", "1146", "Table 'pbx.x' doesn't exist"), nil, plugin.Critical,
			"replication broken: IO thread not running (Slave_IO_Running: No); SQL thread not running (Slave_SQL_Running: No): last SQL error 1146: Table 'pbx.x' doesn't exist"},
		{"an error line with a bar cannot break the output", cols, vals("Yes", "No", "NULL", "1", "a|b\nc"), nil, plugin.Critical, "last SQL error 1: a/b c"},
		{"no thread columns: unknown server", []string{"Foo"}, vals("bar"), nil, plugin.Unknown, "replica status has no Slave_IO_Running"},
		{"exactly at the threshold is fine", cols, vals("Yes", "Yes", "30", "0", ""), nil, plugin.OK, "server lag 30s"},
		{"just above", cols, vals("Yes", "Yes", "31", "0", ""), nil, plugin.Warning, "server lag 31s (warning > 30)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pp := p
			if tc.p != nil {
				tc.p(&pp)
			}
			r := EvaluateMySQL([]MySQLReplica{ParseMySQLReplica(db.NewRow(tc.cols, tc.vals))}, pp)
			first := checkOutput(t, r)
			if r.Overall() != tc.state || !strings.Contains(first, tc.want) {
				t.Fatalf("got %v %q, want %v containing %q", r.Overall(), first, tc.state, tc.want)
			}
		})
	}
}

func TestParseLSN(t *testing.T) {
	good := map[string]LSN{"0/0": 0, "0/3000148": 0x3000148, "16/B374D848": 0x16B374D848, "FFFFFFFF/FFFFFFFF": 1<<64 - 1}
	for s, want := range good {
		got, err := ParseLSN(s)
		if err != nil || got != want || got.String() != strings.ToUpper(s) {
			t.Errorf("ParseLSN(%q) = %v %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "/1", "1/", "G/1", "1/2/3", "100000000/0", "-1/0", "0/+1", " 0/1"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) accepted", s)
		}
	}
}

func pgRow(kv ...string) db.Row {
	var cols []string
	var vs []string
	for i := 0; i < len(kv); i += 2 {
		cols = append(cols, kv[i])
		vs = append(vs, kv[i+1])
	}
	return db.NewRow(cols, vals(vs...))
}

func TestEvaluatePG(t *testing.T) {
	now := "1700000100000000"
	streaming := []string{"in_recovery", "t", "receive_lsn", "0/3000148", "replay_lsn", "0/3000148", "replay_ts_us", "1700000000000000",
		"now_us", now, "paused", "f", "receiver_status", "streaming", "sender_host", "198.51.100.1", "sender_port", "5432"}
	with := func(kv ...string) db.Row {
		r := pgRow(streaming...)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "NULL" {
				r[kv[i]] = nil
			} else {
				v := kv[i+1]
				r[kv[i]] = &v
			}
		}
		return r
	}
	cases := []struct {
		name  string
		row   db.Row
		state plugin.State
		first string
	}{
		// The last replayed transaction is 100 s old, but everything
		// received is replayed: an idle primary, not a lagging standby.
		{"idle primary is no lag", with(), plugin.OK,
			"PBX_DB_SYNC OK - streaming from 198.51.100.1:5432, replay lag 0s | server_lag_seconds=0s;30;120"},
		{"replay behind receive: age of the last replayed transaction", with("receive_lsn", "0/3000200"), plugin.Warning,
			"PBX_DB_SYNC WARNING - streaming from 198.51.100.1:5432, replay lag 100s (warning > 30) | server_lag_seconds=100s;30;120"},
		{"paused", with("receive_lsn", "0/3000200", "replay_ts_us", "1700000095000000", "paused", "t"), plugin.OK,
			"PBX_DB_SYNC OK - streaming from 198.51.100.1:5432, replay lag 5s, WAL replay paused (pg_wal_replay_resume() resumes it)"},
		{"no receiver", with("receiver_status", "NULL", "sender_host", "NULL", "sender_port", "NULL"), plugin.Critical,
			"PBX_DB_SYNC CRITICAL - not replicating: no WAL receiver runs (not connected to a primary), replay lag 0s"},
		{"receiver not streaming", with("receiver_status", "waiting"), plugin.Critical,
			"PBX_DB_SYNC CRITICAL - WAL receiver from 198.51.100.1:5432 is waiting, not streaming, replay lag 0s"},
		{"a primary", with("in_recovery", "f", "receive_lsn", "NULL", "replay_lsn", "NULL", "paused", "NULL", "receiver_status", "NULL"), plugin.Critical,
			"PBX_DB_SYNC CRITICAL - not replicating: the server is not in recovery (it is a primary) | server_lag_seconds=U;30;120"},
		{"nothing replayed yet, behind", with("receive_lsn", "0/3000200", "replay_ts_us", "NULL"), plugin.Unknown,
			"PBX_DB_SYNC UNKNOWN - streaming from 198.51.100.1:5432, replay lag unknown (no transaction replayed since the standby started) | server_lag_seconds=U;30;120"},
		{"socket sender has no port", with("sender_host", "/var/run/postgresql"), plugin.OK,
			"PBX_DB_SYNC OK - streaming from /var/run/postgresql, replay lag 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParsePGStandby(tc.row)
			if err != nil {
				t.Fatal(err)
			}
			r := EvaluatePG(s, DefaultPolicy())
			first := checkOutput(t, r)
			if r.Overall() != tc.state || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %v %q\nwant %v %q", r.Overall(), first, tc.state, tc.first)
			}
		})
	}
	for _, bad := range []db.Row{nil, with("in_recovery", "yes"), with("replay_lsn", "nope"), with("now_us", "NULL"), with("replay_ts_us", "x")} {
		if _, err := ParsePGStandby(bad); err == nil {
			t.Errorf("ParsePGStandby(%v) accepted", bad)
		}
	}
}

func TestEvaluateBytes(t *testing.T) {
	p := DefaultPolicy()
	p.Bytes.Warn.Set("1048576")
	r := EvaluateBytes(0x3000000+2<<20, 0x3000000, p)
	if first := checkOutput(t, r); r.Overall() != plugin.Warning ||
		first != "PBX_DB_SYNC WARNING - 2097152 bytes behind the primary (warning > 1048576) | bytes_behind=2097152B;1048576;;0" {
		t.Fatalf("%v %q", r.Overall(), first)
	}
	// The standby may have replayed past the position read on the primary
	// a moment before: never negative.
	if r := EvaluateBytes(100, 200, p); r.Perf[0].Value != 0 || r.Overall() != plugin.OK {
		t.Fatalf("%+v", r)
	}
}

func TestPGFixtures(t *testing.T) {
	cases := []struct {
		file  string
		state plugin.State
		first string
	}{
		{"pg-15-standby-streaming.tsv", plugin.OK,
			"PBX_DB_SYNC OK - streaming from 198.51.100.1:5432, replay lag 0s | server_lag_seconds=0s;30;120"},
		{"pg-15-standby-paused.tsv", plugin.OK,
			"PBX_DB_SYNC OK - streaming from 198.51.100.1:5432, replay lag 12.979s, WAL replay paused (pg_wal_replay_resume() resumes it) | server_lag_seconds=12.978935s;30;120"},
		{"pg-15-standby-no-receiver.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - not replicating: no WAL receiver runs (not connected to a primary), replay lag 0s | server_lag_seconds=0s;30;120"},
		{"pg-15-primary.tsv", plugin.Critical,
			"PBX_DB_SYNC CRITICAL - not replicating: the server is not in recovery (it is a primary) | server_lag_seconds=U;30;120"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			s, err := ParsePGStandby(fixture(t, tc.file).Row(0))
			if err != nil {
				t.Fatal(err)
			}
			r := EvaluatePG(s, DefaultPolicy())
			if first := checkOutput(t, r); r.Overall() != tc.state || first != tc.first {
				t.Fatalf("got %v %q\nwant %v %q", r.Overall(), first, tc.state, tc.first)
			}
		})
	}
}
