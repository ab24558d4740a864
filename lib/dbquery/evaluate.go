package dbquery

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Observation is everything one run saw.
type Observation struct {
	Target      db.Target
	Table       string
	Node        string
	ConnectErr  *db.Error
	ConnectTime time.Duration

	// ReadOnly is why the server cannot take writes ("" when it can);
	// ReadOnlyErr is set when asking failed.
	ReadOnly    string
	ReadOnlyErr *db.Error

	CreateErr *db.Error // --create failed

	// The heartbeat transaction: the token written, the row read back.
	Token     string
	Back      db.Heartbeat
	BackFound bool
	WriteErr  *db.Error
	QueryTime time.Duration

	Query *QueryObservation // nil without --query
}

// QueryObservation is the outcome of --query.
type QueryObservation struct {
	Err    *db.Error
	NoRows bool
	Value  *string // first column of the first row, nil when NULL
}

// Policy is what the observation is judged by.
type Policy struct {
	Query   threshold.Pair
	Verbose int
}

func msPerf(label string, d time.Duration, unknown bool) plugin.Perf {
	return plugin.Perf{Label: label, Value: d.Seconds(), Unknown: unknown, UOM: "s", Min: plugin.F(0)}
}

func ms(d time.Duration) string {
	return plugin.FormatNumber(math.Round(float64(d.Microseconds())/100)/10) + "ms"
}

// Evaluate judges one run.
func Evaluate(o Observation, p Policy) plugin.Result {
	where := fmt.Sprintf("%s %s", o.Target.Driver, o.Target.Addr())
	if o.ConnectErr != nil {
		return plugin.Result{
			State:   plugin.Critical,
			Summary: o.ConnectErr.Error(),
			Perf:    []plugin.Perf{msPerf("connect_time", 0, true), msPerf("query_time", 0, true)},
		}
	}
	connect := msPerf("connect_time", o.ConnectTime, false)
	hb := heartbeat(o, where, p.Verbose)
	hb.Perf = []plugin.Perf{connect, msPerf("query_time", o.QueryTime, hb.State != plugin.OK)}
	if o.Query == nil {
		return hb
	}
	return plugin.Result{Subs: []plugin.Result{hb, query(*o.Query, p)}}
}

func heartbeat(o Observation, where string, verbose int) plugin.Result {
	switch {
	case o.ReadOnlyErr != nil:
		return plugin.Resultf(plugin.Critical, "%s", o.ReadOnlyErr.Error())
	case o.ReadOnly == "in recovery":
		return plugin.Resultf(plugin.Critical, "primary is in recovery (%s is a standby and cannot take writes)", where)
	case o.ReadOnly != "":
		return plugin.Resultf(plugin.Critical, "primary is read-only (%s on %s)", o.ReadOnly, where)
	case o.CreateErr != nil:
		return plugin.Resultf(plugin.Unknown, "%s", o.CreateErr.Error())
	case o.WriteErr != nil && o.WriteErr.MissingTable():
		return plugin.Result{
			State: plugin.Unknown,
			Summary: fmt.Sprintf("heartbeat table %s is missing in database %s: run once with --create, or create it: %s",
				o.Table, o.Target.Database, db.DDL(o.Target.Driver, o.Table)),
		}
	case o.WriteErr != nil && o.WriteErr.ReadOnly():
		return plugin.Resultf(plugin.Critical, "primary is read-only: %s", o.WriteErr.Error())
	case o.WriteErr != nil:
		return plugin.Resultf(plugin.Critical, "%s", o.WriteErr.Error())
	case !o.BackFound:
		return plugin.Resultf(plugin.Critical, "heartbeat row of %s is missing right after writing it on %s", o.Node, where)
	case o.Back.Token != o.Token:
		return plugin.Resultf(plugin.Critical, "heartbeat read back differs on %s: wrote token %s, read %s",
			where, o.Token, plugin.Clean(o.Back.Token, 64))
	}
	r := plugin.Resultf(plugin.OK, "%s: heartbeat of %s written and read back (connect %s, transaction %s)",
		where, o.Node, ms(o.ConnectTime), ms(o.QueryTime))
	if verbose > 0 {
		r.Long = []string{fmt.Sprintf("row %s in %s.%s: token %s, ts %s UTC (the primary's clock)",
			o.Node, o.Target.Database, o.Table, o.Token, time.UnixMicro(o.Back.TS).UTC().Format("2006-01-02 15:04:05.000000"))}
	}
	return r
}

// query judges --query's first value. No rows is WARNING and a value that
// is not a number CRITICAL, as check_mysql_query and check_pgsql have it.
func query(q QueryObservation, p Policy) plugin.Result {
	perf := p.Query.Perf("result", 0, "")
	perf.Unknown = true
	bad := func(s plugin.State, format string, args ...any) plugin.Result {
		r := plugin.Resultf(s, format, args...)
		r.Perf = []plugin.Perf{perf}
		return r
	}
	switch {
	case q.Err != nil:
		return bad(plugin.Critical, "%s", q.Err.Error())
	case q.NoRows:
		return bad(plugin.Warning, "query returned no rows")
	case q.Value == nil:
		return bad(plugin.Critical, "query returned NULL")
	}
	text := strings.TrimSpace(*q.Value)
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return bad(plugin.Critical, "query returned %q, not a number", plugin.Clean(text, 60))
	}
	perf.Value, perf.Unknown = v, false
	r := plugin.Resultf(p.Query.State(v), "query returned %s", plugin.FormatNumber(v))
	if d := p.Query.Describe(v); d != "" {
		r.Summary += " " + d
	}
	r.Perf = []plugin.Perf{perf}
	return r
}
