package dbsync

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"pbxha/lib/db"
)

// MySQLReplica is one row of SHOW REPLICA STATUS (one replication
// connection or channel), whatever the server named its columns.
type MySQLReplica struct {
	Channel string // Connection_name (MariaDB) or Channel_Name (MySQL); "" the default
	Source  string // host:port of the source

	// IO and SQL are the threads' states (Yes, No, Connecting); IOColumn and
	// SQLColumn the column names found, "" when the row has neither name.
	IO, IOColumn   string
	SQL, SQLColumn string

	LastIOErrno, LastIOError   string
	LastSQLErrno, LastSQLError string

	// Lag is Seconds_Behind_Master/Source; LagNull when the server said
	// NULL, LagColumn "" when the row has no such column, LagText the raw
	// value when it is not a number.
	Lag       float64
	LagNull   bool
	LagColumn string
	LagText   string

	SQLState string // what the SQL thread is doing
	GTID     string // Gtid_IO_Pos (MariaDB) or Executed_Gtid_Set (MySQL)
}

// Column names, newest first: MySQL 8.0.22 renamed Slave/Master to
// Replica/Source; MariaDB (up to 11.x) keeps the old names even under SHOW
// REPLICA STATUS.
var (
	colIO       = []string{"Replica_IO_Running", "Slave_IO_Running"}
	colSQL      = []string{"Replica_SQL_Running", "Slave_SQL_Running"}
	colLag      = []string{"Seconds_Behind_Source", "Seconds_Behind_Master"}
	colHost     = []string{"Source_Host", "Master_Host"}
	colPort     = []string{"Source_Port", "Master_Port"}
	colChannel  = []string{"Channel_Name", "Connection_name"}
	colSQLState = []string{"Replica_SQL_Running_State", "Slave_SQL_Running_State"}
	colGTID     = []string{"Gtid_IO_Pos", "Executed_Gtid_Set"}
)

// ParseMySQLStatus reads every row of SHOW [ALL] REPLICA/SLAVE[S] STATUS.
func ParseMySQLStatus(t db.Table) []MySQLReplica {
	var out []MySQLReplica
	for i := range t.Rows {
		out = append(out, ParseMySQLReplica(t.Row(i)))
	}
	return out
}

// ParseMySQLReplica reads one row.
func ParseMySQLReplica(r db.Row) MySQLReplica {
	var m MySQLReplica
	find := func(names []string) (val, col string) {
		for _, n := range names {
			if v, _, ok := r.Lookup(n); ok {
				return v, n
			}
		}
		return "", ""
	}
	m.IO, m.IOColumn = find(colIO)
	m.SQL, m.SQLColumn = find(colSQL)
	m.Channel = r.String(colChannel...)
	host, port := r.String(colHost...), r.String(colPort...)
	switch {
	case host != "" && port != "" && port != "0":
		m.Source = joinHostPort(host, port)
	default:
		m.Source = host
	}
	m.LastIOErrno, m.LastIOError = r.String("Last_IO_Errno"), r.String("Last_IO_Error")
	m.LastSQLErrno, m.LastSQLError = r.String("Last_SQL_Errno"), r.String("Last_SQL_Error")
	m.SQLState = r.String(colSQLState...)
	m.GTID = r.String(colGTID...)
	for _, n := range colLag {
		v, null, ok := r.Lookup(n)
		if !ok {
			continue
		}
		m.LagColumn = n
		switch f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); {
		case null:
			m.LagNull = true
		case err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0:
			m.LagNull, m.LagText = true, v
		default:
			m.Lag = f
		}
		break
	}
	return m
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// LSN is a PostgreSQL WAL position.
type LSN uint64

// ParseLSN reads PostgreSQL's text form of a pg_lsn, "16/B374D848": two
// hexadecimal numbers of up to 32 bits, the high and the low half.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("%q is not a WAL position (like 0/3000148)", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL position (like 0/3000148)", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xffffffff) }

// PGStandby is what a PostgreSQL server says about its recovery.
type PGStandby struct {
	InRecovery bool

	Receive, Replay       LSN
	HasReceive, HasReplay bool

	// ReplayTS is pg_last_xact_replay_timestamp() and Now the server's
	// clock, µs since the epoch.
	ReplayTS    int64
	HasReplayTS bool
	Now         int64

	Paused   bool
	Receiver string // pg_stat_wal_receiver.status; "" when no WAL receiver runs
	Sender   string // host:port the receiver streams from
}

// PGStandbyQuery reads everything PGStandby holds in one row, also on a
// primary (pg_is_wal_replay_paused() would raise an error there).
const PGStandbyQuery = `SELECT pg_is_in_recovery() AS in_recovery,
  pg_last_wal_receive_lsn() AS receive_lsn,
  pg_last_wal_replay_lsn() AS replay_lsn,
  (EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp()) * 1000000)::bigint AS replay_ts_us,
  (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint AS now_us,
  CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused,
  r.status AS receiver_status, r.sender_host AS sender_host, r.sender_port AS sender_port
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`

// ParsePGStandby reads PGStandbyQuery's row. Values arrive in PostgreSQL's
// text format: booleans t/f, LSNs as hi/lo, integers.
func ParsePGStandby(r db.Row) (PGStandby, error) {
	var s PGStandby
	if r == nil {
		return s, fmt.Errorf("the server returned no row")
	}
	rec, null, ok := r.Lookup("in_recovery")
	if !ok || null || (rec != "t" && rec != "f") {
		return s, fmt.Errorf("pg_is_in_recovery() gave %q, not t or f", rec)
	}
	s.InRecovery = rec == "t"
	var err error
	lsn := func(col string, dst *LSN, has *bool) {
		v, null, _ := r.Lookup(col)
		if null || v == "" || err != nil {
			return
		}
		if *dst, err = ParseLSN(v); err == nil {
			*has = true
		}
	}
	lsn("receive_lsn", &s.Receive, &s.HasReceive)
	lsn("replay_lsn", &s.Replay, &s.HasReplay)
	if err != nil {
		return s, err
	}
	now, null, _ := r.Lookup("now_us")
	if s.Now, err = strconv.ParseInt(now, 10, 64); err != nil || null {
		return s, fmt.Errorf("clock reading %q is not a number", now)
	}
	if ts, null, _ := r.Lookup("replay_ts_us"); !null && ts != "" {
		if s.ReplayTS, err = strconv.ParseInt(ts, 10, 64); err != nil {
			return s, fmt.Errorf("last replay time %q is not a number", ts)
		}
		s.HasReplayTS = true
	}
	s.Paused = r.String("paused") == "t"
	s.Receiver = r.String("receiver_status")
	if h := r.String("sender_host"); h != "" {
		s.Sender = h
		if p := r.String("sender_port"); p != "" && !strings.HasPrefix(h, "/") {
			s.Sender = joinHostPort(h, p)
		}
	}
	return s, nil
}
