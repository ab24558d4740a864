package dbquery

import (
	"strings"
	"testing"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func first(t *testing.T, r plugin.Result) string {
	t.Helper()
	out := r.Format("PBX_DB_QUERY")
	line, _, _ := strings.Cut(out, "\n")
	if _, perf, ok := strings.Cut(line, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	return line
}

func str(s string) *string { return &s }

func TestEvaluate(t *testing.T) {
	my := db.Target{Driver: db.MySQL, Host: "127.0.0.1", Port: 3306, Database: "pbx", User: "pbx"}
	pg := db.Target{Driver: db.PgSQL, Host: "127.0.0.1", Port: 5432, Database: "pbx", User: "pbx"}
	ok := Observation{Target: my, Table: "pbxha_heartbeat", Node: "node1", ConnectTime: 2 * time.Millisecond, QueryTime: 1500 * time.Microsecond,
		Token: "abc", Back: db.Heartbeat{Node: "node1", Token: "abc"}, BackFound: true}
	with := func(f func(*Observation)) Observation { o := ok; f(&o); return o }
	noPolicy := Policy{}
	pair := Policy{Query: threshold.Pairf("10", "20")}
	cases := []struct {
		name  string
		o     Observation
		p     Policy
		state plugin.State
		first string
	}{
		{"written and read back", ok, noPolicy, plugin.OK,
			"PBX_DB_QUERY OK - mysql 127.0.0.1:3306: heartbeat of node1 written and read back (connect 2ms, transaction 1.5ms) | connect_time=0.002s;;;0 query_time=0.0015s;;;0"},
		{"connection refused", with(func(o *Observation) {
			o.ConnectErr = &db.Error{Step: "connecting to mysql at 127.0.0.1:3306 as pbx", Msg: "connection refused (nothing listens there)"}
		}), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - connecting to mysql at 127.0.0.1:3306 as pbx: connection refused (nothing listens there) | connect_time=U;;;0 query_time=U;;;0"},
		{"MariaDB read_only", with(func(o *Observation) { o.ReadOnly = "read_only = ON" }), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - primary is read-only (read_only = ON on mysql 127.0.0.1:3306) | connect_time=0.002s;;;0 query_time=U;;;0"},
		{"PostgreSQL standby", with(func(o *Observation) { o.Target, o.ReadOnly = pg, "in recovery" }), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - primary is in recovery (pgsql 127.0.0.1:5432 is a standby and cannot take writes)"},
		{"PostgreSQL default_transaction_read_only", with(func(o *Observation) { o.Target, o.ReadOnly = pg, "default_transaction_read_only = on" }), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - primary is read-only (default_transaction_read_only = on on pgsql 127.0.0.1:5432)"},
		{"refused write: read-only", with(func(o *Observation) {
			o.WriteErr = &db.Error{Step: "writing the heartbeat into pbxha_heartbeat", Msg: "ERROR 1290 (HY000): The MariaDB server is running with the --read-only option so it cannot execute this statement", Number: 1290}
		}), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - primary is read-only: writing the heartbeat into pbxha_heartbeat: ERROR 1290 (HY000)"},
		{"missing table: the exact DDL", with(func(o *Observation) {
			o.WriteErr = &db.Error{Step: "writing the heartbeat into pbxha_heartbeat", Msg: "ERROR 1146 (42S02): Table 'pbx.pbxha_heartbeat' doesn't exist", Number: 1146}
		}), noPolicy, plugin.Unknown,
			"PBX_DB_QUERY UNKNOWN - heartbeat table pbxha_heartbeat is missing in database pbx: run once with --create, or create it: " + db.DDL(db.MySQL, "pbxha_heartbeat") + " | "},
		{"missing table, PostgreSQL DDL", with(func(o *Observation) {
			o.Target = pg
			o.WriteErr = &db.Error{Msg: `ERROR: relation "pbxha_heartbeat" does not exist (SQLSTATE 42P01)`, SQLState: "42P01"}
		}), noPolicy, plugin.Unknown,
			"PBX_DB_QUERY UNKNOWN - heartbeat table pbxha_heartbeat is missing in database pbx: run once with --create, or create it: CREATE TABLE IF NOT EXISTS pbxha_heartbeat (node varchar(64) PRIMARY KEY, token varchar(64) NOT NULL, ts timestamptz NOT NULL) | "},
		{"--create refused", with(func(o *Observation) {
			o.CreateErr = &db.Error{Step: "creating the heartbeat table pbxha_heartbeat", Msg: "ERROR 1142 (42000): CREATE command denied to user 'pbx'@'localhost' for table 'pbxha_heartbeat'", Number: 1142}
		}), noPolicy, plugin.Unknown,
			"PBX_DB_QUERY UNKNOWN - creating the heartbeat table pbxha_heartbeat: ERROR 1142 (42000): CREATE command denied"},
		{"other write error", with(func(o *Observation) {
			o.WriteErr = &db.Error{Step: "writing the heartbeat into pbxha_heartbeat", Msg: "ERROR 1205 (HY000): Lock wait timeout exceeded; try restarting transaction", Number: 1205}
		}), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - writing the heartbeat into pbxha_heartbeat: ERROR 1205 (HY000): Lock wait timeout exceeded"},
		{"read back differs", with(func(o *Observation) { o.Back.Token = "zzz|evil" }), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - heartbeat read back differs on mysql 127.0.0.1:3306: wrote token abc, read zzz/evil"},
		{"row gone", with(func(o *Observation) { o.BackFound = false }), noPolicy, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - heartbeat row of node1 is missing right after writing it on mysql 127.0.0.1:3306"},
		{"query within", with(func(o *Observation) { o.Query = &QueryObservation{Value: str("7")} }), pair, plugin.OK,
			"PBX_DB_QUERY OK - mysql 127.0.0.1:3306: heartbeat of node1 written and read back (connect 2ms, transaction 1.5ms), query returned 7 | connect_time=0.002s;;;0 query_time=0.0015s;;;0 result=7;10;20"},
		{"query warning", with(func(o *Observation) { o.Query = &QueryObservation{Value: str(" 12.5 ")} }), pair, plugin.Warning,
			"PBX_DB_QUERY WARNING - query returned 12.5 (warning > 10) | connect_time=0.002s;;;0 query_time=0.0015s;;;0 result=12.5;10;20"},
		{"query critical", with(func(o *Observation) { o.Query = &QueryObservation{Value: str("21")} }), pair, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - query returned 21 (critical > 20)"},
		{"query no rows: WARNING as check_mysql_query", with(func(o *Observation) { o.Query = &QueryObservation{NoRows: true} }), pair, plugin.Warning,
			"PBX_DB_QUERY WARNING - query returned no rows | connect_time=0.002s;;;0 query_time=0.0015s;;;0 result=U;10;20"},
		{"query NULL", with(func(o *Observation) { o.Query = &QueryObservation{} }), pair, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - query returned NULL"},
		{"query text", with(func(o *Observation) { o.Query = &QueryObservation{Value: str("ready")} }), pair, plugin.Critical,
			`PBX_DB_QUERY CRITICAL - query returned "ready", not a number`},
		{"query NaN is no number", with(func(o *Observation) { o.Query = &QueryObservation{Value: str("NaN")} }), pair, plugin.Critical,
			`PBX_DB_QUERY CRITICAL - query returned "NaN", not a number`},
		{"query SQL error", with(func(o *Observation) {
			o.Query = &QueryObservation{Err: &db.Error{Step: "running --query", Msg: "ERROR 1064 (42000): You have an error in your SQL syntax"}}
		}), pair, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - running --query: ERROR 1064 (42000): You have an error in your SQL syntax"},
		{"read-only primary and a fine query: still CRITICAL", with(func(o *Observation) { o.ReadOnly = "read_only = ON"; o.Query = &QueryObservation{Value: str("1")} }), pair, plugin.Critical,
			"PBX_DB_QUERY CRITICAL - primary is read-only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.o, tc.p)
			got := first(t, r)
			if r.Overall() != tc.state || !strings.HasPrefix(got, tc.first) {
				t.Fatalf("got %v %q\nwant %v %q", r.Overall(), got, tc.state, tc.first)
			}
		})
	}
}
