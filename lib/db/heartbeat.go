package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// DefaultTable is the heartbeat table's name.
const DefaultTable = "pbxha_heartbeat"

// DDL is the statement that creates the heartbeat table, as --create runs
// it and as the message about a missing table prints it.
func DDL(d Driver, table string) string {
	if d == PgSQL {
		return "CREATE TABLE IF NOT EXISTS " + table + " (node varchar(64) PRIMARY KEY, token varchar(64) NOT NULL, ts timestamptz NOT NULL)"
	}
	// DATETIME, not TIMESTAMP: it is never converted through the session's
	// time zone and never gets MySQL's implicit ON UPDATE CURRENT_TIMESTAMP.
	return "CREATE TABLE IF NOT EXISTS " + table + " (node VARCHAR(64) NOT NULL PRIMARY KEY, token VARCHAR(64) NOT NULL, ts DATETIME(6) NOT NULL) ENGINE=InnoDB"
}

// Heartbeat is one row as a server sees it.
type Heartbeat struct {
	Node  string
	Token string
	TS    int64 // when it was written, µs since the epoch, by the writer's clock
	Now   int64 // the reading server's clock at the read, µs since the epoch
}

// Age is how old the row is by the reading server's clock.
func (h Heartbeat) Age() time.Duration { return time.Duration(h.Now-h.TS) * time.Microsecond }

// NewToken is a fresh random token: 32 hex digits.
func NewToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// epochMicros computes µs since the epoch in SQL. MariaDB/MySQL:
// TIMESTAMPDIFF between two DATETIMEs is plain arithmetic, free of the
// session's time zone (UNIX_TIMESTAMP is not); ts holds UTC.
func epochMicros(d Driver, expr string) string {
	if d == PgSQL {
		return "(EXTRACT(EPOCH FROM " + expr + ") * 1000000)::bigint"
	}
	return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " + expr + ")"
}

func nowExpr(d Driver) string {
	if d == PgSQL {
		// clock_timestamp, not now(): now() is the transaction's start.
		return "clock_timestamp()"
	}
	return "UTC_TIMESTAMP(6)"
}

// CreateHeartbeat creates the table unless it exists.
func (c *Conn) CreateHeartbeat(ctx context.Context, table string) error {
	return c.Exec(ctx, "creating the heartbeat table "+table, DDL(c.Target.Driver, table))
}

// WriteHeartbeat upserts node's row with token and the server's clock.
func (c *Conn) WriteHeartbeat(ctx context.Context, table, node, token string) error {
	step := "writing the heartbeat into " + table
	if c.Target.Driver == PgSQL {
		return c.Exec(ctx, step, "INSERT INTO "+table+" (node, token, ts) VALUES ($1, $2, clock_timestamp()) "+
			"ON CONFLICT (node) DO UPDATE SET token = EXCLUDED.token, ts = EXCLUDED.ts", node, token)
	}
	// The token twice rather than VALUES(token), which MySQL 8.0.20
	// deprecates and MariaDB never replaced with MySQL's row alias.
	return c.Exec(ctx, step, "INSERT INTO "+table+" (node, token, ts) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
		"ON DUPLICATE KEY UPDATE token = ?, ts = UTC_TIMESTAMP(6)", node, token, token)
}

// HeartbeatQuery is the SQL that reads node's row (the newest row when
// node is "") together with the server's clock; it always returns one
// row, with NULL node when there is none.
func HeartbeatQuery(d Driver, table string, byNode bool) string {
	inner := "SELECT node, token, ts FROM " + table + " ORDER BY ts DESC LIMIT 1"
	if byNode {
		ph := "?"
		if d == PgSQL {
			ph = "$1"
		}
		inner = "SELECT node, token, ts FROM " + table + " WHERE node = " + ph
	}
	on := "1 = 1"
	if d == PgSQL {
		on = "true"
	}
	return fmt.Sprintf("SELECT h.node AS node, h.token AS token, %s AS ts_us, %s AS now_us FROM (SELECT 1 AS one) AS x LEFT JOIN (%s) AS h ON %s",
		epochMicros(d, "h.ts"), epochMicros(d, nowExpr(d)), inner, on)
}

// ReadHeartbeat reads node's row, or the newest row when node is "".
// found is false when there is none; Now is set either way.
func (c *Conn) ReadHeartbeat(ctx context.Context, table, node string) (h Heartbeat, found bool, err error) {
	step := "reading the heartbeat from " + table
	var args []any
	if node != "" {
		args = append(args, node)
	}
	t, err := c.Query(ctx, step, HeartbeatQuery(c.Target.Driver, table, node != ""), args...)
	if err != nil {
		return h, false, err
	}
	h, found, perr := ParseHeartbeat(t.Row(0))
	if perr != nil {
		return h, false, &Error{Step: step, Msg: Scrub(perr.Error(), c.pw)}
	}
	return h, found, nil
}

// ParseHeartbeat reads HeartbeatQuery's row.
func ParseHeartbeat(r Row) (h Heartbeat, found bool, err error) {
	if r == nil {
		return h, false, fmt.Errorf("the server returned no row")
	}
	now, null, ok := r.Lookup("now_us")
	if !ok || null {
		return h, false, fmt.Errorf("the server returned no clock reading")
	}
	if h.Now, err = strconv.ParseInt(now, 10, 64); err != nil {
		return h, false, fmt.Errorf("clock reading %q is not a number", now)
	}
	node, null, _ := r.Lookup("node")
	if null {
		return h, false, nil
	}
	h.Node = node
	h.Token = r.String("token")
	ts, null, _ := r.Lookup("ts_us")
	if null {
		return h, false, fmt.Errorf("heartbeat row of %q has no time", node)
	}
	if h.TS, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return h, false, fmt.Errorf("heartbeat time %q is not a number", ts)
	}
	return h, true, nil
}

// ReadOnly says why the server cannot take writes, "" when it can:
// "read_only = ON" (MariaDB/MySQL), "in recovery" or
// "default_transaction_read_only = on" (PostgreSQL).
func (c *Conn) ReadOnly(ctx context.Context) (string, error) {
	const step = "checking whether the server is read-only"
	if c.Target.Driver == PgSQL {
		t, err := c.Query(ctx, step, "SELECT pg_is_in_recovery() AS recovery, current_setting('default_transaction_read_only') AS ro")
		if err != nil {
			return "", err
		}
		r := t.Row(0)
		switch {
		case r == nil:
			return "", &Error{Step: step, Msg: "no answer"}
		case r.String("recovery") == "t":
			return "in recovery", nil
		case r.String("ro") == "on":
			return "default_transaction_read_only = on", nil
		}
		return "", nil
	}
	v, _, err := c.Value(ctx, step, "SELECT @@global.read_only")
	if err != nil {
		return "", err
	}
	if v != nil && *v != "0" && *v != "OFF" {
		return "read_only = ON", nil
	}
	return "", nil
}
