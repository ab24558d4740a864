package dbsync

import (
	"fmt"
	"math"
	"strings"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Default lag thresholds in seconds.
const (
	DefaultWarning  = "30"
	DefaultCritical = "120"
)

// Policy is what the replica is judged by.
type Policy struct {
	Lag     threshold.Pair // seconds, for the heartbeat and the server's own lag
	Bytes   threshold.Pair // PostgreSQL bytes behind the primary (optional)
	NullLag plugin.State   // the server cannot say its lag
	Verbose int
}

// DefaultPolicy is the flags' defaults.
func DefaultPolicy() Policy {
	return Policy{Lag: threshold.Pairf(DefaultWarning, DefaultCritical), NullLag: plugin.Unknown}
}

func secs(v float64) string {
	return plugin.FormatNumber(math.Round(v*1000)/1000) + "s"
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// lagResult judges one lag figure in seconds.
func lagResult(p Policy, label, what string, v float64) plugin.Result {
	r := plugin.Resultf(p.Lag.State(v), "%s %s%s", what, secs(v), suffix(p.Lag.Describe(v)))
	r.Perf = []plugin.Perf{p.Lag.Perf(label, v, "s")}
	return r
}

func unknownLag(p Policy, label string) plugin.Perf {
	perf := p.Lag.Perf(label, 0, "s")
	perf.Unknown = true
	return perf
}

// EvaluateMySQL judges SHOW REPLICA STATUS. Several connections or
// channels are one sub-result each.
func EvaluateMySQL(reps []MySQLReplica, p Policy) plugin.Result {
	if len(reps) == 0 {
		return plugin.Result{
			State:   plugin.Critical,
			Summary: "not replicating: SHOW REPLICA STATUS is empty (no replication source configured)",
			Perf:    []plugin.Perf{unknownLag(p, "server_lag_seconds")},
		}
	}
	if len(reps) == 1 {
		return mysqlReplica(reps[0], p, "")
	}
	var r plugin.Result
	for _, m := range reps {
		r.Subs = append(r.Subs, mysqlReplica(m, p, channelName(m.Channel)))
	}
	return r
}

func channelName(c string) string {
	if c == "" {
		return "default"
	}
	return plugin.Clean(c, 64)
}

func mysqlReplica(m MySQLReplica, p Policy, channel string) plugin.Result {
	label, prefix := "server_lag_seconds", ""
	if channel != "" {
		label, prefix = channel+"_server_lag_seconds", "connection "+channel+": "
	}
	from := ""
	if m.Source != "" {
		from = " from " + plugin.Clean(m.Source, 80)
	}
	if m.IOColumn == "" || m.SQLColumn == "" {
		return plugin.Result{
			State:   plugin.Unknown,
			Summary: prefix + "replica status has no Slave_IO_Running/Slave_SQL_Running (or Replica_...) column: unknown server",
			Perf:    []plugin.Perf{unknownLag(p, label)},
		}
	}
	var long []string
	if p.Verbose > 0 {
		long = append(long, fmt.Sprintf("%s: %s, %s: %s, SQL thread state: %s, GTID position: %s",
			m.IOColumn, plugin.Clean(m.IO, 20), m.SQLColumn, plugin.Clean(m.SQL, 20), quoted(m.SQLState), quoted(m.GTID)))
	}
	var broken []string
	if !strings.EqualFold(m.IO, "Yes") {
		what := "IO thread not running"
		if strings.EqualFold(m.IO, "Connecting") {
			what = "IO thread not connected"
		}
		broken = append(broken, fmt.Sprintf("%s (%s: %s)%s", what, m.IOColumn, plugin.Clean(m.IO, 20), lastError("IO", m.LastIOErrno, m.LastIOError)))
	} else if m.LastIOError != "" {
		long = append(long, "earlier IO error"+lastError("IO", m.LastIOErrno, m.LastIOError))
	}
	if !strings.EqualFold(m.SQL, "Yes") {
		broken = append(broken, fmt.Sprintf("SQL thread not running (%s: %s)%s", m.SQLColumn, plugin.Clean(m.SQL, 20), lastError("SQL", m.LastSQLErrno, m.LastSQLError)))
	} else if m.LastSQLError != "" {
		long = append(long, "earlier SQL error"+lastError("SQL", m.LastSQLErrno, m.LastSQLError))
	}
	if len(broken) > 0 {
		return plugin.Result{
			State:   plugin.Critical,
			Summary: prefix + "replication" + from + " broken: " + strings.Join(broken, "; "),
			Long:    long,
			Perf:    []plugin.Perf{unknownLag(p, label)},
		}
	}
	var r plugin.Result
	switch {
	case m.LagColumn == "":
		r = plugin.Result{State: p.NullLag, Summary: "server lag unknown (no Seconds_Behind_Master column)", Perf: []plugin.Perf{unknownLag(p, label)}}
	case m.LagNull && m.LagText != "":
		r = plugin.Result{State: p.NullLag, Summary: fmt.Sprintf("server lag unknown (%s is %q)", m.LagColumn, plugin.Clean(m.LagText, 30)), Perf: []plugin.Perf{unknownLag(p, label)}}
	case m.LagNull:
		r = plugin.Result{State: p.NullLag, Summary: fmt.Sprintf("server lag unknown (%s is NULL)", m.LagColumn), Perf: []plugin.Perf{unknownLag(p, label)}}
	default:
		r = lagResult(p, label, "server lag", m.Lag)
	}
	r.Summary = prefix + "replicating" + from + ", IO and SQL threads running, " + r.Summary
	r.Long = long
	return r
}

func lastError(thread, errno, msg string) string {
	if msg == "" {
		return ""
	}
	if errno != "" && errno != "0" {
		return fmt.Sprintf(": last %s error %s: %s", thread, plugin.Clean(errno, 10), plugin.Clean(msg, 0))
	}
	return fmt.Sprintf(": last %s error: %s", thread, plugin.Clean(msg, 0))
}

func quoted(s string) string {
	if s == "" {
		return `""`
	}
	return plugin.Clean(s, 100)
}

// EvaluatePG judges a PostgreSQL standby.
func EvaluatePG(s PGStandby, p Policy) plugin.Result {
	const label = "server_lag_seconds"
	if !s.InRecovery {
		return plugin.Result{
			State:   plugin.Critical,
			Summary: "not replicating: the server is not in recovery (it is a primary)",
			Perf:    []plugin.Perf{unknownLag(p, label)},
		}
	}
	var r plugin.Result
	switch {
	case s.HasReceive && s.HasReplay && s.Replay >= s.Receive:
		// Everything received is replayed: an idle primary sends nothing,
		// and the last replayed transaction's age says nothing about lag.
		r = lagResult(p, label, "replay lag", 0)
	case s.HasReplayTS:
		r = lagResult(p, label, "replay lag", math.Max(0, float64(s.Now-s.ReplayTS)/1e6))
	default:
		r = plugin.Result{State: p.NullLag, Summary: "replay lag unknown (no transaction replayed since the standby started)", Perf: []plugin.Perf{unknownLag(p, label)}}
	}
	from := ""
	if s.Sender != "" {
		from = " from " + plugin.Clean(s.Sender, 80)
	}
	switch {
	case s.Receiver == "":
		r.State = plugin.Critical
		r.Summary = "not replicating: no WAL receiver runs (not connected to a primary), " + r.Summary
	case s.Receiver != "streaming":
		r.State = plugin.Critical
		r.Summary = fmt.Sprintf("WAL receiver%s is %s, not streaming, %s", from, plugin.Clean(s.Receiver, 20), r.Summary)
	default:
		r.Summary = "streaming" + from + ", " + r.Summary
	}
	if s.Paused {
		r.Summary += ", WAL replay paused (pg_wal_replay_resume() resumes it)"
	}
	if p.Verbose > 0 {
		r.Long = append(r.Long, fmt.Sprintf("received up to %s, replayed up to %s", lsnText(s.Receive, s.HasReceive), lsnText(s.Replay, s.HasReplay)))
	}
	return r
}

func lsnText(l LSN, ok bool) string {
	if !ok {
		return "(none)"
	}
	return l.String()
}

// EvaluateBytes judges how many bytes of WAL the standby has still to
// replay, from the primary's current position.
func EvaluateBytes(primary, replay LSN, p Policy) plugin.Result {
	var n float64
	if primary > replay {
		n = float64(primary - replay)
	}
	r := plugin.Resultf(p.Bytes.State(n), "%s bytes behind the primary%s", plugin.FormatNumber(n), suffix(p.Bytes.Describe(n)))
	perf := p.Bytes.Perf("bytes_behind", n, "B")
	perf.Min = plugin.F(0)
	r.Perf = []plugin.Perf{perf}
	return r
}

// HeartbeatObservation is what was read of the heartbeat.
type HeartbeatObservation struct {
	Table string

	// With --primary-host: the primary's newest row (PrimaryFound) or
	// why it could not be read (PrimaryErr).
	PrimaryAddr  string
	Primary      db.Heartbeat
	PrimaryFound bool
	PrimaryErr   *db.Error
	Wrote        bool // --write-heartbeat wrote Primary just before

	// The replica's row for the primary's node (or its newest row when the
	// primary was not read), as last polled.
	Replica      db.Heartbeat
	ReplicaFound bool
	ReplicaErr   *db.Error
	// Waited is how long after reading the primary the replica was last
	// read: when it then held the primary's row, the time it took to get
	// there. FirstRead: it was the first read.
	Waited    time.Duration
	FirstRead bool
}

// seen: the replica holds the primary's newest heartbeat (or a newer one,
// written between the two reads).
func (h HeartbeatObservation) seen() bool {
	return h.ReplicaFound && (h.Replica.Token == h.Primary.Token || h.Replica.TS >= h.Primary.TS)
}

// EvaluateHeartbeat turns the heartbeat rows into the lag, as the package
// comment explains.
func EvaluateHeartbeat(h HeartbeatObservation, p Policy) plugin.Result {
	const label = "lag_seconds"
	missing := func(e *db.Error, where string) plugin.Result {
		r := plugin.Resultf(plugin.Unknown, "%s", e.Error())
		if e.MissingTable() {
			r.Summary = fmt.Sprintf("heartbeat table %s is missing on the %s: create it on the primary (check_pbx_db_query --create)", h.Table, where)
		}
		r.Perf = []plugin.Perf{unknownLag(p, label)}
		return r
	}
	if h.ReplicaErr != nil {
		return missing(h.ReplicaErr, "replica")
	}
	if h.PrimaryAddr == "" || h.PrimaryErr != nil {
		r := localHeartbeat(h, p, label)
		if h.PrimaryErr != nil {
			r.State = plugin.Worst(r.State, plugin.Warning)
			r.Summary = fmt.Sprintf("no heartbeat from the primary (%s), so %s", h.PrimaryErr.Error(), r.Summary)
			if h.PrimaryErr.MissingTable() {
				r.Summary = fmt.Sprintf("heartbeat table %s is missing on the primary (check_pbx_db_query --create creates it), so %s", h.Table, r.Summary)
			}
		}
		return r
	}
	if !h.PrimaryFound {
		r := plugin.Resultf(plugin.Unknown, "no heartbeat on the primary %s yet: run check_pbx_db_query there, or give --write-heartbeat", h.PrimaryAddr)
		r.Perf = []plugin.Perf{unknownLag(p, label)}
		return r
	}
	node := plugin.Clean(h.Primary.Node, 64)
	age := float64(h.Primary.Now-h.Primary.TS) / 1e6
	waited := h.Waited.Seconds()
	var r plugin.Result
	switch {
	case h.seen() && h.FirstRead && !h.Wrote:
		r = lagResult(p, label, "heartbeat lag", 0)
		r.Summary += fmt.Sprintf(" (the replica has %s's newest heartbeat, written %s ago)", node, secs(age))
	case h.seen():
		// It arrived while we watched: its delay is the lag, to within one
		// poll.
		r = lagResult(p, label, "heartbeat lag", math.Max(0, age+waited))
		r.Summary += fmt.Sprintf(" (%s's heartbeat reached the replica)", node)
	case h.ReplicaFound:
		lag := math.Max(0, float64(h.Primary.Now-h.Replica.TS)/1e6+waited)
		r = lagResult(p, label, "heartbeat lag", lag)
		r.Summary += fmt.Sprintf(": %s's heartbeat of %s ago has not reached the replica within %s, the newest there is that old",
			node, secs(age+waited), secs(waited))
	default:
		lag := math.Max(0, age+waited)
		r = lagResult(p, label, "heartbeat lag", lag)
		r.Summary = fmt.Sprintf("heartbeat lag at least %s%s (the replica has no heartbeat row of %s)", secs(lag), suffix(p.Lag.Describe(lag)), node)
	}
	if p.Verbose > 0 {
		r.Long = append(r.Long, fmt.Sprintf("primary %s: %s token %s at %s; replica: token %s at %s; waited %s",
			h.PrimaryAddr, node, h.Primary.Token, stamp(h.Primary.TS), replicaToken(h), replicaStamp(h), secs(waited)))
	}
	return r
}

// localHeartbeat compares the replica's newest heartbeat with the
// replica's own clock: all there is without the primary.
func localHeartbeat(h HeartbeatObservation, p Policy, label string) plugin.Result {
	if !h.ReplicaFound {
		r := plugin.Resultf(plugin.Unknown, "no heartbeat row on the replica: run check_pbx_db_query on the primary (or give --primary-host and --write-heartbeat)")
		r.Perf = []plugin.Perf{unknownLag(p, label)}
		return r
	}
	age := math.Max(0, float64(h.Replica.Now-h.Replica.TS)/1e6)
	r := lagResult(p, label, "heartbeat lag", age)
	r.Summary += fmt.Sprintf(" (age of %s's heartbeat by this server's clock: no --primary-host)", plugin.Clean(h.Replica.Node, 64))
	return r
}

func stamp(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000") + " UTC"
}

func replicaToken(h HeartbeatObservation) string {
	if !h.ReplicaFound {
		return "(none)"
	}
	return plugin.Clean(h.Replica.Token, 64)
}

func replicaStamp(h HeartbeatObservation) string {
	if !h.ReplicaFound {
		return "-"
	}
	return stamp(h.Replica.TS)
}
