package db

import (
	"strings"
	"testing"
)

func strs(vs ...string) []*string {
	out := make([]*string, len(vs))
	for i := range vs {
		if vs[i] != "NULL" {
			out[i] = &vs[i]
		}
	}
	return out
}

func TestRow(t *testing.T) {
	r := NewRow([]string{"Slave_IO_Running", "SLAVE_IO_RUNNING", "Seconds_Behind_Master", "Empty", "Short"}, strs("Yes", "No", "NULL", ""))
	if v, null, ok := r.Lookup("Replica_IO_Running", "slave_io_running"); v != "Yes" || null || !ok {
		t.Errorf("first name wins, case-insensitive: %q %v %v", v, null, ok)
	}
	if _, null, ok := r.Lookup("Seconds_Behind_Master"); !null || !ok {
		t.Error("NULL lost")
	}
	if v, null, ok := r.Lookup("empty"); v != "" || null || !ok {
		t.Error("empty string read as NULL")
	}
	if _, null, ok := r.Lookup("short"); !null || !ok {
		t.Error("a missing value is NULL")
	}
	if _, _, ok := r.Lookup("nope"); ok {
		t.Error("found a column that is not there")
	}
	if (Table{}).Row(0) != nil {
		t.Error("row of an empty table")
	}
}

func TestParseHeartbeat(t *testing.T) {
	cols := []string{"node", "token", "ts_us", "now_us"}
	h, found, err := ParseHeartbeat(NewRow(cols, strs("node1", "abc", "1700000000000000", "1700000002500000")))
	if err != nil || !found || h.Node != "node1" || h.Token != "abc" || h.Age().Seconds() != 2.5 {
		t.Fatalf("%+v %v %v", h, found, err)
	}
	h, found, err = ParseHeartbeat(NewRow(cols, strs("NULL", "NULL", "NULL", "1700000002500000")))
	if err != nil || found || h.Now != 1700000002500000 {
		t.Fatalf("no row: %+v %v %v", h, found, err)
	}
	for _, bad := range [][]*string{strs("n", "t", "x", "1"), strs("n", "t", "NULL", "1"), strs("n", "t", "1", "NULL"), strs("n", "t", "1", "1.5")} {
		if _, _, err := ParseHeartbeat(NewRow(cols, bad)); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	if _, _, err := ParseHeartbeat(nil); err == nil {
		t.Error("accepted no row")
	}
}

// The statements are what the lab runs against real servers; here only
// what must never change: placeholders per engine, no time zone anywhere.
func TestHeartbeatSQL(t *testing.T) {
	my := HeartbeatQuery(MySQL, "pbxha_heartbeat", true)
	pg := HeartbeatQuery(PgSQL, "pbxha_heartbeat", true)
	if !strings.Contains(my, "WHERE node = ?") || !strings.Contains(pg, "WHERE node = $1") {
		t.Fatalf("placeholders:\n%s\n%s", my, pg)
	}
	if strings.Contains(my, "UNIX_TIMESTAMP") || !strings.Contains(my, "UTC_TIMESTAMP(6)") || !strings.Contains(pg, "clock_timestamp()") {
		t.Fatalf("clock:\n%s\n%s", my, pg)
	}
	if !strings.Contains(HeartbeatQuery(MySQL, "hb", false), "ORDER BY ts DESC LIMIT 1") {
		t.Fatal("newest row")
	}
	if d := DDL(MySQL, "hb"); d != "CREATE TABLE IF NOT EXISTS hb (node VARCHAR(64) NOT NULL PRIMARY KEY, token VARCHAR(64) NOT NULL, ts DATETIME(6) NOT NULL) ENGINE=InnoDB" {
		t.Fatal(d)
	}
	if a, b := NewToken(), NewToken(); len(a) != 32 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
}
