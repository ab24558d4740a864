package dbsync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
)

// fuzzTable reads the fuzzer's text as column and value lists: the first
// line the column names, every other line a row, fields split by tabs,
// "NULL" a NULL. Unlike parseTSV it keeps rows of any width: servers are
// not to be trusted to send as many values as names.
func fuzzTable(data string) db.Table {
	var t db.Table
	lines := strings.Split(data, "\n")
	t.Cols = strings.Split(lines[0], "\t")
	for _, l := range lines[1:] {
		var row []*string
		for _, f := range strings.Split(l, "\t") {
			if f == "NULL" {
				row = append(row, nil)
			} else {
				row = append(row, &f)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func seedFixtures(f *testing.F, prefix string) {
	files, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.tsv"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
}

// FuzzReplicaStatus feeds arbitrary column/value lists through the SHOW
// REPLICA STATUS parsing and evaluation: whatever the server sends, the
// output has one valid first line and a known state, and a stopped thread
// is never OK.
func FuzzReplicaStatus(f *testing.F) {
	seedFixtures(f, "mariadb-")
	seedFixtures(f, "mysql-")
	f.Add("Slave_IO_Running\tSlave_SQL_Running\tSeconds_Behind_Master\nYes\tYes\tNULL")
	f.Add("Replica_IO_Running\tReplica_SQL_Running\tSeconds_Behind_Source\tChannel_Name\nYes\tYes\t-1\t|x\nNo\tYes")
	f.Add("slave_io_running\tSLAVE_IO_RUNNING\nYes\tNo")
	f.Add("")
	f.Fuzz(func(t *testing.T, data string) {
		tab := fuzzTable(data)
		reps := ParseMySQLStatus(tab)
		p := DefaultPolicy()
		p.Verbose = 1
		r := EvaluateMySQL(reps, p)
		checkOutput(t, r)
		for _, m := range reps {
			if m.IOColumn != "" && m.SQLColumn != "" && (!strings.EqualFold(m.IO, "Yes") || !strings.EqualFold(m.SQL, "Yes")) && r.Overall() != plugin.Critical {
				t.Fatalf("a stopped thread gives %v: %+v", r.Overall(), m)
			}
		}
	})
}

// FuzzPGStandby feeds arbitrary values of PGStandbyQuery's columns (in
// PostgreSQL's text format) through parsing and evaluation.
func FuzzPGStandby(f *testing.F) {
	seedFixtures(f, "pg-")
	head := "in_recovery\treceive_lsn\treplay_lsn\treplay_ts_us\tnow_us\tpaused\treceiver_status\tsender_host\tsender_port\n"
	f.Add(head + "t\t0/3000148\t0/3000148\t1700000000000000\t1700000100000000\tf\tstreaming\t198.51.100.1\t5432")
	f.Add(head + "t\tFFFFFFFF/FFFFFFFF\t0/0\t-9223372036854775808\t9223372036854775807\tt\tstopping\t/tmp\tNULL")
	f.Add(head + "f\tNULL\tNULL\tNULL\t1\tNULL\tNULL\tNULL\tNULL")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := ParsePGStandby(fuzzTable(data).Row(0))
		if err != nil {
			return
		}
		p := DefaultPolicy()
		p.Verbose = 1
		r := EvaluatePG(s, p)
		checkOutput(t, r)
		if (!s.InRecovery || s.Receiver != "streaming") && r.Overall() != plugin.Critical {
			t.Fatalf("%+v gives %v", s, r.Overall())
		}
		if s.HasReplay {
			checkOutput(t, EvaluateBytes(s.Receive, s.Replay, p))
		}
	})
}

// FuzzLSN: any text either is refused or reads back as it was written
// (up to case and leading zeros).
func FuzzLSN(f *testing.F) {
	for _, s := range []string{"0/3000148", "16/B374D848", "ffffffff/0", "/", "0/00000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		if err != nil {
			return
		}
		back, err := ParseLSN(l.String())
		if err != nil || back != l {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, uint64(l), l.String(), uint64(back), err)
		}
	})
}

// FuzzHeartbeat feeds arbitrary heartbeat rows (as the server returns them)
// through db.ParseHeartbeat and the lag evaluation.
func FuzzHeartbeat(f *testing.F) {
	f.Add("node1", "aaa", "1700000000000000", "1700000050000000", "aaa", "1700000000000000", int64(3))
	f.Add("n|x", "t", "-1", "9223372036854775807", "u", "NULL", int64(-1))
	f.Add("NULL", "", "", "1", "", "", int64(0))
	f.Fuzz(func(t *testing.T, node, token, ts, now, rtoken, rts string, waitedMs int64) {
		row := func(tok, ts string) db.Row {
			return db.NewRow([]string{"node", "token", "ts_us", "now_us"}, vals(node, tok, ts, now))
		}
		p, pfound, perr := db.ParseHeartbeat(row(token, ts))
		r, rfound, rerr := db.ParseHeartbeat(row(rtoken, rts))
		if perr != nil || rerr != nil {
			return
		}
		h := HeartbeatObservation{Table: "pbxha_heartbeat", PrimaryAddr: "198.51.100.1:5432", Primary: p, PrimaryFound: pfound,
			Replica: r, ReplicaFound: rfound, Waited: time.Duration(waitedMs) * time.Millisecond}
		pol := DefaultPolicy()
		pol.Verbose = 1
		checkOutput(t, EvaluateHeartbeat(h, pol))
		h.PrimaryAddr = ""
		checkOutput(t, EvaluateHeartbeat(h, pol))
	})
}
