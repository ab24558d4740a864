package ami

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Policy is what the user asked the observation to be held against.
type Policy struct {
	Ping  threshold.Pair // Ping's round trip in milliseconds
	Calls threshold.Pair // CoreCurrentCalls
	// MinUptime: a PBX started more recently than this is WARNING (it
	// restarted, maybe crashed); 0 disables it.
	MinUptime time.Duration
	// TimeoutState is -t's state, for a step that ran out of time.
	TimeoutState plugin.State
	Verbose      int
}

// futureSlack is how far CoreStatus's startup time may lie ahead of the
// server's clock before the uptime is taken as unknowable (the dates carry
// no zone; a PBX in another zone than this host gives such times).
const futureSlack = time.Minute

// Evaluate turns an observation into the check's result. Pure.
func Evaluate(o Observation, p Policy) plugin.Result {
	r := plugin.Result{State: plugin.OK, Perf: perfdata(o, p)}
	if o.Err != nil {
		r.State = plugin.Critical
		var se *StepError
		if errors.As(o.Err, &se) && se.Timeout {
			r.State = p.TimeoutState
		}
		r.Summary = o.Err.Error()
		r.Long = describe(o, p)
		return r
	}

	var parts []string
	ping := ms(o.Ping)
	st := p.Ping.State(ping)
	parts = append(parts, withReason("ping "+fmtMs(ping)+" ms", p.Ping.Describe(ping)))
	r.State = plugin.Worst(r.State, st)

	if o.CoreErr != nil {
		r.State = plugin.Worst(r.State, plugin.Unknown)
		msg := "cannot read CoreStatus: " + o.CoreErr.Error()
		var ae *ActionError
		if errors.As(o.CoreErr, &ae) && ae.PermissionDenied() {
			msg += " (the AMI user needs read = system,reporting in manager.conf)"
		}
		parts = append(parts, msg)
	} else {
		calls := float64(o.Core.CurrentCalls)
		r.State = plugin.Worst(r.State, p.Calls.State(calls))
		parts = append(parts, withReason(plural(o.Core.CurrentCalls, "active call"), p.Calls.Describe(calls)))
		up, ok := uptime(o)
		switch {
		case ok && p.MinUptime > 0 && up < p.MinUptime:
			r.State = plugin.Worst(r.State, plugin.Warning)
			parts = append(parts, "restarted "+human(up)+" ago (warning < --min-uptime "+human(p.MinUptime)+")")
		case ok:
			parts = append(parts, "up "+human(up))
		case p.MinUptime > 0:
			r.State = plugin.Worst(r.State, plugin.Unknown)
			parts = append(parts, "uptime unknown, --min-uptime cannot be checked")
		}
	}
	r.Summary = fmt.Sprintf("AMI %s at %s: %s", plugin.Clean(o.Version, 40), o.Addr, strings.Join(parts, ", "))
	r.Long = describe(o, p)
	return r
}

// uptime is the server's time since startup; ok is false when CoreStatus
// did not say or said something impossible.
func uptime(o Observation) (time.Duration, bool) {
	if o.Reached < StageCore || o.CoreErr != nil || o.Core.Startup.IsZero() || o.Now.IsZero() {
		return 0, false
	}
	up := o.Now.Sub(o.Core.Startup)
	if up < -futureSlack {
		return 0, false
	}
	return max(up, 0), true
}

// perfdata is what was measured, up to the step that failed.
func perfdata(o Observation, p Policy) []plugin.Perf {
	var out []plugin.Perf
	if o.Reached >= StageConnected {
		out = append(out, plugin.Perf{Label: "connect_time", Value: ms(o.Connect), UOM: "ms", Min: plugin.F(0)})
	}
	if o.Reached >= StageLoggedIn {
		out = append(out, plugin.Perf{Label: "login_time", Value: ms(o.Login), UOM: "ms", Min: plugin.F(0)})
	}
	if o.Reached >= StagePinged {
		pp := p.Ping.Perf("ping_time", ms(o.Ping), "ms")
		pp.Min = plugin.F(0)
		out = append(out, pp)
	}
	if o.Reached >= StageCore {
		cp := p.Calls.Perf("calls", float64(o.Core.CurrentCalls), "")
		cp.Min = plugin.F(0)
		cp.Unknown = o.CoreErr != nil
		up, ok := uptime(o)
		upp := plugin.Perf{Label: "uptime", Value: up.Truncate(time.Second).Seconds(), UOM: "s", Unknown: !ok, Min: plugin.F(0)}
		if p.MinUptime > 0 {
			upp.Warn = strconv.FormatInt(int64(p.MinUptime/time.Second), 10) + ":"
		}
		out = append(out, cp, upp)
	}
	return out
}

// describe is the long output: what the server is and said, beyond the
// summary.
func describe(o Observation, p Policy) []string {
	var l []string
	if o.Reached >= StageGreeted {
		how := ""
		if o.TLS {
			how = " over TLS"
		}
		l = append(l, fmt.Sprintf("%s%s%s, user %s", GreetingPrefix, plugin.Clean(o.Version, 40), how, plugin.Clean(o.User, 64)))
	}
	if o.Reached >= StageCore && o.CoreErr == nil {
		if !o.Core.Startup.IsZero() {
			s := "started " + o.Core.Startup.Format("2006-01-02 15:04:05")
			if _, ok := uptime(o); !ok {
				s += ", which is after the server's current time: is Asterisk's time zone not this host's?"
			}
			l = append(l, s)
		} else {
			l = append(l, "CoreStatus gave no readable startup time")
		}
		if !o.Core.Reload.IsZero() {
			s := "last reload " + o.Core.Reload.Format("2006-01-02 15:04:05")
			if ago := o.Now.Sub(o.Core.Reload); ago >= 0 && !o.Now.IsZero() {
				s += " (" + human(ago) + " ago)"
			}
			l = append(l, s)
		}
		if o.Core.ProcessedCalls >= 0 {
			l = append(l, "calls processed since start: "+strconv.Itoa(o.Core.ProcessedCalls))
		}
	}
	if p.Verbose >= 1 && o.Skipped > 0 {
		l = append(l, "events skipped while waiting for responses: "+strconv.Itoa(o.Skipped))
	}
	return l
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// fmtMs prints milliseconds with a precision that suits their size.
func fmtMs(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func withReason(s, why string) string {
	if why == "" {
		return s
	}
	return s + " " + why
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// human prints a duration the way people read uptimes: "3d 4h", "2h 5m",
// "5m 3s", "42s".
func human(d time.Duration) string {
	d = d.Truncate(time.Second)
	days := int64(d / (24 * time.Hour))
	h := int64(d/time.Hour) % 24
	m := int64(d/time.Minute) % 60
	s := int64(d/time.Second) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
