package netfailover

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

// Observation is what both sides found.
type Observation struct {
	Targets    []netip.Addr
	MinTargets int

	SlaveName, MasterName string // for messages; "" when unknown

	Slave     []probe.Result // this node's, in Targets' order
	Master    []probe.Result // the master's, any order; nil when MasterErr
	MasterErr error
	Verbose   int
}

// side is one node's view of the targets.
type side struct {
	name    string // "master node1"
	results map[netip.Addr]probe.Result
	reached int
	rtt     time.Duration // mean over the reachable targets
}

func newSide(role, name string, rs []probe.Result) side {
	s := side{name: role, results: map[netip.Addr]probe.Result{}}
	if name != "" {
		s.name += " " + name
	}
	var sum time.Duration
	for _, r := range rs {
		s.results[r.Target.Unmap()] = r
		if r.Reachable {
			s.reached++
			sum += r.RTT
		}
	}
	if s.reached > 0 {
		s.rtt = sum / time.Duration(s.reached)
	}
	return s
}

// Evaluate judges both sides' reach.
func Evaluate(o Observation) plugin.Result {
	n := len(o.Targets)
	slave := newSide("slave", o.SlaveName, o.Slave)
	perf := func(label string, s *side) []plugin.Perf {
		reach := plugin.Perf{Label: label + "_reachable", Value: float64(s.reached), Min: plugin.F(0), Max: plugin.F(float64(n))}
		rtt := plugin.Perf{Label: label + "_rtt", Value: s.rtt.Seconds(), UOM: "s", Min: plugin.F(0), Unknown: s.reached == 0}
		if s.results == nil {
			reach.Unknown, rtt.Unknown = true, true
		}
		return []plugin.Perf{reach, rtt}
	}

	masterName := "master"
	if o.MasterName != "" {
		masterName += " " + o.MasterName
	}
	if o.MasterErr != nil {
		r := plugin.Resultf(plugin.Unknown, "cannot ask %s to probe the telephony targets: %s (check_pbx_master_alive judges a master that does not answer)",
			masterName, plugin.Clean(o.MasterErr.Error(), 0))
		r.Perf = append(perf("master", &side{}), perf("slave", &slave)...)
		for _, t := range o.Targets {
			r.Long = append(r.Long, fmt.Sprintf("%s: %s", t, describe(slave, t)))
		}
		return r
	}
	master := newSide("master", o.MasterName, o.Master)
	r := plugin.Result{Perf: append(perf("master", &master), perf("slave", &slave)...)}
	for _, t := range o.Targets {
		line := fmt.Sprintf("%s: %s; %s", t, describe(master, t), describe(slave, t))
		r.Long = append(r.Long, line)
		if o.Verbose > 0 {
			for _, s := range []side{master, slave} {
				for _, d := range s.results[t].Detail {
					r.Long = append(r.Long, "    "+s.name+": "+plugin.Clean(d, 0))
				}
			}
		}
	}
	var missing []string
	for _, t := range o.Targets {
		if _, ok := master.results[t]; !ok {
			missing = append(missing, t.String())
		}
	}
	if len(missing) > 0 {
		r.State = plugin.Unknown
		r.Summary = fmt.Sprintf("%s returned no result for %s", masterName, strings.Join(missing, ", "))
		return r
	}

	// This node could not send its probes at all (no CAP_NET_RAW): it has
	// no view of the telephony network to compare with the master's.
	for _, t := range o.Targets {
		if sr := slave.results[t]; sr.Denied {
			r.State = plugin.Unknown
			r.Summary = fmt.Sprintf("cannot probe %s from %s: %s (setcap cap_net_raw+ep on this plugin, as make install and the package do)",
				t, slave.name, plugin.Clean(sr.Err, 0))
			return r
		}
	}

	need := o.MinTargets
	counts := fmt.Sprintf("%s reaches %d/%d, %s %d/%d", master.name, master.reached, n, slave.name, slave.reached, n)
	switch {
	case master.reached < need && slave.reached >= need:
		r.State = plugin.Critical
		r.Summary = fmt.Sprintf("%s reaches %d/%d telephony targets, %s reaches %d/%d: the master lost the telephony network",
			master.name, master.reached, n, slave.name, slave.reached, n)
		if un := unreachable(master, o.Targets); un != "" {
			r.Summary += " (" + un + ")"
		}
	case master.reached < need:
		r.State = plugin.Warning
		r.Summary = "telephony network down for both nodes: a failover would not help (" + counts + ")"
	case slave.reached < need:
		r.State = plugin.Warning
		r.Summary = fmt.Sprintf("%s reaches only %d/%d telephony targets: it could not take the telephony network over (%s)",
			slave.name, slave.reached, n, counts)
	default:
		var only []string
		for _, t := range o.Targets {
			if !master.results[t].Reachable && slave.results[t].Reachable {
				only = append(only, t.String())
			}
		}
		if len(only) > 0 {
			r.State = plugin.Warning
			r.Summary = fmt.Sprintf("%s cannot reach %s, which the slave reaches (%s)", master.name, strings.Join(only, ", "), counts)
		} else {
			r.State = plugin.OK
			r.Summary = fmt.Sprintf("%s telephony targets", counts)
			if n == 1 {
				r.Summary = fmt.Sprintf("%s and %s reach %s", master.name, slave.name, o.Targets[0])
			}
		}
	}
	return r
}

// unreachable names the targets a side cannot reach, with why when the
// prober said.
func unreachable(s side, targets []netip.Addr) string {
	var parts []string
	for _, t := range targets {
		if r := s.results[t]; !r.Reachable {
			parts = append(parts, t.String()+" unreachable"+because(r.Err))
		}
	}
	return strings.Join(parts, ", ")
}

func because(err string) string {
	if err == "" {
		return ""
	}
	return ": " + plugin.Clean(err, 80)
}

// describe is one side's line about one target.
func describe(s side, t netip.Addr) string {
	r, ok := s.results[t]
	switch {
	case !ok:
		return s.name + " gave no result"
	case !r.Reachable:
		return fmt.Sprintf("%s: unreachable (%d probes, no answer%s)", s.name, r.Sent, because(r.Err))
	}
	return fmt.Sprintf("%s: reachable, rtt %ss, loss %s%%", s.name, plugin.FormatNumber(math.Round(r.RTT.Seconds()*1e6)/1e6), plugin.FormatNumber(math.Round(r.Loss)))
}
