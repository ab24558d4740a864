package ntptime

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/beevik/ntp"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Policy is what the samples are judged by.
type Policy struct {
	Offset  threshold.Pair // on |offset| in seconds
	Stratum threshold.Pair // optional
	Skew    threshold.Pair // on |skew| to the peer in seconds (--peer)
	// Any judges the servers by the best one, as check_ntp_time does; by
	// default the worst server decides, since a PBX with two configured
	// servers and one of them dead or wrong should be looked at.
	Any bool
	// TimeoutState is -t's state: a server that stays silent until our
	// time is up gets it, as a whole check that timed out would.
	TimeoutState plugin.State
	Verbose      int
}

// Evaluate judges the servers' samples and, when asked for, the local
// daemon's status. Each server is a sub-result; the local daemon is one
// more.
func Evaluate(samples []Sample, local *LocalStatus, p Policy) plugin.Result {
	var subs []plugin.Result
	for _, s := range samples {
		prefix := ""
		if len(samples) > 1 {
			prefix = s.Server + "_"
		}
		subs = append(subs, EvaluateServer(s, p, prefix))
	}
	if p.Any && len(subs) > 1 {
		subs = []plugin.Result{best(samples, subs)}
	}
	if local != nil {
		subs = append(subs, EvaluateLocal(*local, p))
	}
	return plugin.Result{Subs: subs}
}

// best folds the servers into one result with the best server's state;
// among equal states an answer beats silence, and a smaller offset a larger
// one. The others become long output, not sub-results: a sub-result's state
// always counts towards the overall one.
func best(samples []Sample, subs []plugin.Result) plugin.Result {
	b := 0
	for i, s := range subs {
		switch {
		case better(s.State, subs[b].State):
			b = i
		case s.State != subs[b].State:
		case samples[b].Err != nil && samples[i].Err == nil:
			b = i
		case samples[i].Err == nil && samples[i].Offset.Abs() < samples[b].Offset.Abs():
			b = i
		}
	}
	r := plugin.Result{
		State:   subs[b].State,
		Summary: fmt.Sprintf("best of %d servers: %s", len(subs), subs[b].Summary),
	}
	for _, s := range subs {
		r.Perf = append(r.Perf, s.Perf...)
		r.Long = append(r.Long, fmt.Sprintf("[%s] %s", s.State, s.Summary))
		for _, l := range s.Long {
			r.Long = append(r.Long, "    "+l)
		}
	}
	return r
}

func better(a, b plugin.State) bool { return a != b && plugin.Worst(a, b) == b }

// EvaluateServer judges one server. prefix goes before each perfdata
// label ("192.0.2.1_") when there are several servers.
func EvaluateServer(s Sample, p Policy, prefix string) plugin.Result {
	offPerf := p.Offset.Perf(prefix+"offset", 0, "s")
	stPerf := p.Stratum.Perf(prefix+"stratum", 0, "")
	rttPerf := plugin.Perf{Label: prefix + "rtt", UOM: "s", Min: plugin.F(0)}
	if s.Err != nil {
		offPerf.Unknown, stPerf.Unknown, rttPerf.Unknown = true, true, true
		r := plugin.Result{State: plugin.Critical, Summary: s.Server + ": no response: " + describeErr(s.Err)}
		var (
			ne  net.Error
			dns *net.DNSError
		)
		switch {
		case errors.As(s.Err, &dns):
			r.Summary = fmt.Sprintf("%s: cannot resolve %s: %s", s.Server, plugin.Clean(dns.Name, 0), plugin.Clean(dns.Err, 0))
			if s.TimedOut {
				r.State = p.TimeoutState
			}
		case s.TimedOut:
			r.State = p.TimeoutState
			r.Summary = fmt.Sprintf("%s: no response within %ss", s.Server, plugin.FormatNumber(math.Round(s.Waited.Seconds()*10)/10))
		case !errors.As(s.Err, &ne) && !errors.Is(s.Err, syscall.ECONNREFUSED):
			// beevik/ntp's own errors: an answer came, not one to use
			// (wrong mode, origin mismatch, a clock ticking backwards).
			r.Summary = s.Server + ": bad reply: " + plugin.Clean(s.Err.Error(), 0)
		}
		r.Perf = []plugin.Perf{offPerf, stPerf, rttPerf}
		return r
	}

	state := plugin.OK
	var parts []string
	off := s.Offset.Seconds()
	if s.Stratum == 0 {
		// A kiss-o'-death carries no time: the server tells us to go away
		// (RATE, DENY, RSTR), RFC 5905 section 7.4.
		state = plugin.Warning
		parts = append(parts, "kiss-o'-death"+suffix(s.Reference)+" (server refuses to serve time)")
		offPerf.Unknown, stPerf.Unknown = true, true
	} else {
		offPerf.Value = off
		parts = append(parts, "offset "+signed(off)+"s"+suffix(p.Offset.Describe(math.Abs(off))))
		state = plugin.Worst(state, p.Offset.State(math.Abs(off)))
		stPerf.Value = float64(s.Stratum)
		parts = append(parts, "stratum "+strconv.Itoa(s.Stratum)+suffix(p.Stratum.Describe(float64(s.Stratum))))
		state = plugin.Worst(state, p.Stratum.State(float64(s.Stratum)))
	}
	rttPerf.Value = s.RTT.Seconds()

	switch {
	case s.Stratum >= 16:
		state = plugin.Worst(state, plugin.Warning)
		parts = append(parts, "server not synchronised (stratum 16)")
	case s.Leap == ntp.LeapNotInSync:
		state = plugin.Worst(state, plugin.Warning)
		parts = append(parts, "server not synchronised (leap indicator 3, alarm)")
	case s.Invalid != nil && s.Stratum != 0:
		// stale reference time, excessive dispersion: the server answers
		// but its time is not fit to synchronise to.
		state = plugin.Worst(state, plugin.Warning)
		parts = append(parts, "unusable for synchronisation: "+s.Invalid.Error())
	case s.Leap == ntp.LeapAddSecond || s.Leap == ntp.LeapDelSecond:
		parts = append(parts, "leap second announced")
	}

	r := plugin.Result{
		State:   state,
		Summary: s.Server + ": " + strings.Join(parts, ", "),
		Perf:    []plugin.Perf{offPerf, stPerf, rttPerf},
	}
	if p.Verbose > 0 {
		r.Long = append(r.Long, fmt.Sprintf("NTPv%d, reference %s, rtt %ss, root delay %ss, root dispersion %ss, leap indicator %d",
			s.Version, quoted(s.Reference), seconds(s.RTT), seconds(s.RootDelay), seconds(s.RootDispersion), s.Leap))
	}
	return r
}

// EvaluateLocal judges what the node's own time daemon says.
func EvaluateLocal(l LocalStatus, p Policy) plugin.Result {
	switch {
	case l.Daemon == "":
		return plugin.Resultf(plugin.Unknown, "no local time daemon found (chronyd, systemd-timesyncd)")
	case l.Err != nil && l.Where != "":
		return plugin.Resultf(plugin.Unknown, "local %s at %s: %s", l.Daemon, plugin.Clean(l.Where, 0), describeErr(l.Err))
	case l.Err != nil:
		return plugin.Resultf(plugin.Unknown, "local %s: %s", l.Daemon, describeErr(l.Err))
	case !l.HasTracking: // systemd-timesyncd tells synchronised or not, nothing more
		if !l.Synced {
			return plugin.Resultf(plugin.Warning, "local clock not synchronised (%s)", l.Daemon)
		}
		return plugin.Resultf(plugin.OK, "local %s: synchronised", l.Daemon)
	}

	offPerf := p.Offset.Perf("local_offset", l.Offset, "s")
	stPerf := plugin.Perf{Label: "local_stratum", Value: float64(l.Stratum)}
	r := plugin.Result{Perf: []plugin.Perf{offPerf, stPerf}}
	if p.Verbose > 0 {
		r.Long = []string{fmt.Sprintf("asked %s: leap status %d, reference %s, stratum %d, system time offset %ss",
			l.Where, l.Leap, quoted(l.Reference), l.Stratum, signed(l.Offset))}
	}
	switch {
	case !l.Synced:
		// chronyd then reports stratum 0 and no correction: nothing to plot.
		r.Perf[0].Unknown, r.Perf[1].Unknown = true, true
		r.State = plugin.Warning
		r.Summary = "local clock not synchronised (" + l.Daemon + ")"
	case l.FreeRunning:
		r.State = plugin.Warning
		r.Summary = fmt.Sprintf("local %s: free-running on its own clock (local stratum %d), no time source", l.Daemon, l.Stratum)
	default:
		r.State = p.Offset.State(math.Abs(l.Offset))
		r.Summary = fmt.Sprintf("local %s: synchronised to %s, stratum %d, offset %ss%s",
			l.Daemon, l.Reference, l.Stratum, signed(l.Offset), suffix(p.Offset.Describe(math.Abs(l.Offset))))
	}
	return r
}

// describeErr says why a server or daemon gave no answer, without Go's
// "read udp 127.0.0.1:41234->..." preamble.
func describeErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens there)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return plugin.Clean(err.Error(), 0)
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

func quoted(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// signed prints seconds with an explicit sign, as offsets read best.
func signed(v float64) string {
	s := plugin.FormatNumber(v)
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}

func seconds(d time.Duration) string { return plugin.FormatNumber(d.Seconds()) }
