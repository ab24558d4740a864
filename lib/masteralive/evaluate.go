package masteralive

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/probe"
	"pbxha/lib/threshold"
)

// Path is one way to the master and what probing it found.
type Path struct {
	Name   string // "telephony" or "cluster"
	Prefix string // perfdata label prefix: "tel", "clu"
	Addr   netip.Addr
	Method probe.Method
	Ports  []int
	Result probe.Result
}

// Policy is what the paths are judged by besides reachability.
type Policy struct {
	Loss    threshold.Range // --pl-warning, percent
	RTT     threshold.Range // --rta-warning, seconds
	Verbose int
}

// noGreeting is how lib/probe says a banner probe reached a listener that
// never spoke.
const noGreeting = "no greeting"

// Evaluate judges the two paths to master (its name, "" when unknown).
func Evaluate(master string, tel, clu Path, p Policy) plugin.Result {
	who := "master"
	if master != "" {
		who += " " + master
	}
	paths := []Path{tel, clu}
	var down, up []Path
	for _, x := range paths {
		if x.Result.Reachable {
			up = append(up, x)
		} else {
			down = append(down, x)
		}
	}
	r := plugin.Result{State: plugin.OK}
	for _, x := range paths {
		r.Perf = append(r.Perf, perf(x, p)...)
		r.Long = append(r.Long, describe(x))
		if p.Verbose >= 1 {
			for _, d := range x.Result.Detail {
				r.Long = append(r.Long, "    "+d)
			}
		}
	}
	// A path whose probes could not be sent at all (no CAP_NET_RAW) was not
	// probed: its silence says nothing about the master, and CRITICAL would
	// promote this node for a missing capability.
	var denied []string
	var deniedErr string
	for _, x := range down {
		if x.Result.Denied {
			denied = append(denied, x.Name+" "+target(x))
			deniedErr = x.Result.Err
		}
	}
	if len(denied) > 0 {
		r.State = plugin.Unknown
		r.Summary = fmt.Sprintf("cannot probe %s on %s: %s (setcap cap_net_raw+ep on this plugin, as make install and the package do)",
			who, strings.Join(denied, " and "), plugin.Clean(deniedErr, 0))
		return r
	}
	switch len(down) {
	case 2:
		r.State = plugin.Critical
		r.Summary = fmt.Sprintf("%s unreachable on %s %s and %s %s", who, tel.Name, target(tel), clu.Name, target(clu))
		if hung(tel) && hung(clu) {
			r.Summary += ": it accepts connections but does not greet (hung?)"
		}
		return r
	case 1:
		r.State = plugin.Warning
		d, u := down[0], up[0]
		r.Summary = fmt.Sprintf("%s unreachable on %s %s%s, reachable on %s %s: %s path down", who, d.Name, target(d), why(d), u.Name, target(u), d.Name)
	default:
		r.Summary = fmt.Sprintf("%s reachable on %s %s and %s %s", who, tel.Name, tel.Addr, clu.Name, clu.Addr)
	}
	// Slowness and loss only matter on a path that answers.
	var notes []string
	for _, x := range up {
		if p.Loss.Alert(x.Result.Loss) {
			r.State = plugin.Worst(r.State, plugin.Warning)
			notes = append(notes, fmt.Sprintf("%s loss %s%% (warning %s)", x.Name, plugin.FormatNumber(round(x.Result.Loss, 1)), p.Loss))
		}
		if rtt := x.Result.RTT.Seconds(); p.RTT.Alert(rtt) {
			r.State = plugin.Worst(r.State, plugin.Warning)
			notes = append(notes, fmt.Sprintf("%s rta %s (warning %ss)", x.Name, ms(x.Result.RTT), p.RTT))
		}
	}
	if len(notes) > 0 {
		r.Summary += "; " + strings.Join(notes, ", ")
	}
	return r
}

// target is the address, with the ports when they decide (banner): the
// admin must know what did not greet.
func target(x Path) string {
	if x.Method == probe.Banner && len(x.Ports) > 0 {
		ps := make([]string, len(x.Ports))
		for i, p := range x.Ports {
			ps[i] = fmt.Sprint(p)
		}
		return fmt.Sprintf("%s port %s", x.Addr, strings.Join(ps, ","))
	}
	return x.Addr.String()
}

func hung(x Path) bool { return x.Method == probe.Banner && strings.Contains(x.Result.Err, noGreeting) }

// why is a short reason for a down path, when it is more than silence.
func why(x Path) string {
	switch e := x.Result.Err; {
	case e == "", e == "timed out":
		return ""
	default:
		return " (" + plugin.Clean(e, 80) + ")"
	}
}

func describe(x Path) string {
	res := x.Result
	s := fmt.Sprintf("%s %s: %s %d/%d answered", x.Name, x.Addr, x.Method, res.Received, res.Sent)
	if len(x.Ports) > 0 && x.Method.UsesTCP() {
		s += fmt.Sprintf(" (ports %s)", strings.Trim(fmt.Sprint(x.Ports), "[]"))
	}
	if res.Reachable {
		s += ", rta " + ms(res.RTT)
	}
	if res.Err != "" {
		s += ", " + plugin.Clean(res.Err, 0)
	}
	return s
}

func perf(x Path, p Policy) []plugin.Perf {
	rta := plugin.Perf{Label: x.Prefix + "_rta", Value: x.Result.RTT.Seconds(), UOM: "s", Warn: p.RTT.String(), Min: plugin.F(0)}
	if !x.Result.Reachable {
		rta.Unknown = true
	}
	pl := plugin.Perf{Label: x.Prefix + "_pl", Value: round(x.Result.Loss, 1), UOM: "%", Warn: p.Loss.String(), Min: plugin.F(0), Max: plugin.F(100)}
	return []plugin.Perf{rta, pl}
}

func ms(d time.Duration) string {
	return plugin.FormatNumber(round(float64(d)/float64(time.Millisecond), 3)) + "ms"
}

func round(v float64, decimals int) float64 {
	f := 1.0
	for range decimals {
		f *= 10
	}
	if v < 0 {
		return -float64(int64(-v*f+0.5)) / f
	}
	return float64(int64(v*f+0.5)) / f
}
