package sip

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Outcome is what one OPTIONS probe found. Exactly one of these holds: a
// final response (Code > 0), a failure to send or connect (Err), or silence
// until the wait ran out (TimedOut).
type Outcome struct {
	Dest   string // "192.0.2.10:5060/udp", as output names it
	Code   int    // final response code, 0 when none came
	Reason string // its reason phrase, as received
	RTT    time.Duration

	// Provisional lists the 1xx codes that came before the final answer.
	Provisional []int

	Err error // could not send or connect: refused, unreachable, TLS...

	TimedOut bool
	Waited   time.Duration // from the start of the probe to its end
	// Sent counts the request's transmissions over UDP: the first one and
	// the Timer A retransmissions. 0 for TCP and TLS.
	Sent int
	// NotConnected: the TCP or TLS connection was never established.
	NotConnected bool
}

// Policy judges an outcome.
type Policy struct {
	Accept Codes
	RTT    threshold.Pair // seconds
	// TimeoutState is -t's state: a server that stays silent until our
	// time is up gets it, as a check that timed out as a whole would.
	TimeoutState plugin.State
}

// Evaluate judges an outcome: an accepted code is OK unless the round trip
// breaches -w/-c; any other code, a transport failure and silence are not.
func Evaluate(o Outcome, p Policy) plugin.Result {
	rtt := plugin.Perf{Label: "rtt", UOM: "s", Warn: p.RTT.Warn.String(), Crit: p.RTT.Crit.String(), Min: plugin.F(0)}
	code := plugin.Perf{Label: "code", Min: plugin.F(0), Max: plugin.F(699)}
	var r plugin.Result
	switch {
	case o.Code > 0:
		secs := o.RTT.Seconds()
		rtt.Value = secs
		code.Value = float64(o.Code)
		reason := plugin.Clean(o.Reason, 100)
		answer := strconv.Itoa(o.Code)
		if reason != "" {
			answer += " " + reason
		}
		if p.Accept.Contains(o.Code) {
			r.State = p.RTT.State(secs)
			r.Summary = fmt.Sprintf("SIP %s from %s in %s", answer, o.Dest, seconds(secs))
			if d := p.RTT.Describe(secs); d != "" {
				r.Summary += " " + d
			}
		} else {
			r.State = plugin.Critical
			r.Summary = fmt.Sprintf("SIP %s from %s (accepted: %s)", answer, o.Dest, p.Accept)
		}
		if len(o.Provisional) > 0 {
			r.Long = append(r.Long, "provisional responses first: "+ints(o.Provisional))
		}
	case o.Err != nil:
		rtt.Unknown, code.Unknown = true, true
		r.State = plugin.Critical
		r.Summary = o.Dest + ": " + plugin.Clean(o.Err.Error(), 0)
	default:
		rtt.Unknown, code.Unknown = true, true
		r.State = p.TimeoutState
		r.Summary = fmt.Sprintf("no SIP response after %s from %s", waited(o.Waited), o.Dest)
		switch {
		case o.NotConnected:
			r.Summary += " (connection not established)"
		case o.Sent == 1:
			r.Summary += " (sent once)"
		case o.Sent > 1:
			r.Summary += fmt.Sprintf(" (sent %d times)", o.Sent)
		}
	}
	r.Perf = []plugin.Perf{rtt, code}
	return r
}

// seconds prints a round trip with four decimals at most: "0.0012s".
func seconds(s float64) string {
	t := strconv.FormatFloat(s, 'f', 4, 64)
	t = strings.TrimRight(strings.TrimRight(t, "0"), ".")
	if t == "" || t == "-" {
		t = "0"
	}
	return t + "s"
}

// waited prints how long we waited, to a tenth of a second: "9.5s".
func waited(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + "s"
}

func ints(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}
