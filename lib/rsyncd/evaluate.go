package rsyncd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Policy is what the observation is held against.
type Policy struct {
	Connect  threshold.Pair // seconds from dialing to the greeting
	Transfer threshold.Pair // seconds the canary's transfers took
	// TimeoutState is -t's state, for a step that ran out of time.
	TimeoutState plugin.State
	Verbose      int
}

// Evaluate turns an observation into the check's result. Pure.
func Evaluate(o Observation, p Policy) plugin.Result {
	r := plugin.Result{State: plugin.OK, Perf: perfdata(o, p)}
	if o.ListErr != nil {
		r.State = errState(o.ListErr, p)
		r.Summary = o.ListErr.Error()
		r.Long = describe(o, p)
		return r
	}

	var parts []string
	connect := o.Listing.Connect.Seconds()
	if st := p.Connect.State(connect); st != plugin.OK {
		r.State = plugin.Worst(r.State, st)
		parts = append(parts, "greeting after "+secs(o.Listing.Connect)+" "+p.Connect.Describe(connect))
	}
	for _, m := range o.Modules {
		st, text := moduleStatus(m, o, p)
		r.State = plugin.Worst(r.State, st)
		parts = append(parts, text)
	}
	if len(o.Modules) == 0 {
		parts = append(parts, listedText(o.Listing.Modules))
	}
	if c := o.Canary; c != nil {
		st, text := canaryStatus(*c, p)
		r.State = plugin.Worst(r.State, st)
		parts = append(parts, text)
	}
	r.Summary = fmt.Sprintf("rsyncd %s protocol %d: %s", o.Addr, o.Listing.Greeting.Protocol, strings.Join(parts, ", "))
	r.Long = describe(o, p)
	return r
}

// errState is the state a failed step gives: -t's when it ran out of time.
func errState(err error, p Policy) plugin.State {
	var se *StepError
	if errors.As(err, &se) && se.Timeout {
		return p.TimeoutState
	}
	return plugin.Critical
}

func moduleStatus(m ModuleCheck, o Observation, p Policy) (plugin.State, string) {
	name := "module " + plugin.Clean(m.Name, 64)
	var ue *UnknownModuleError
	var ae *AuthError
	switch {
	case errors.As(m.Err, &ue):
		return plugin.Critical, name + " not found (" + listedText(o.Listing.Modules) + ")"
	case errors.As(m.Err, &ae):
		return plugin.Critical, name + ": password rejected for user " + plugin.Clean(ae.User, 64) + " (" + plugin.Clean(ae.Message, 0) + ")"
	case m.Err != nil:
		// The error's step names the module.
		return errState(m.Err, p), m.Err.Error()
	}
	a := m.Access
	switch {
	case a == nil:
		return plugin.OK, name + " listed"
	case a.Authenticated:
		return plugin.OK, name + " accepts user " + plugin.Clean(o.User, 64)
	case a.Exists && !m.Listed && a.AuthRequired:
		return plugin.OK, name + " exists (not listed; asks for a password)"
	case a.Exists && !m.Listed:
		return plugin.OK, name + " exists (not listed)"
	case a.Exists && !a.AuthRequired:
		return plugin.OK, name + " listed, open without a password"
	}
	return plugin.OK, name + " listed"
}

func canaryStatus(c Canary, p Policy) (plugin.State, string) {
	if c.Err != nil {
		return errState(c.Err, p), "canary: " + c.Err.Error()
	}
	t := c.Took.Seconds()
	st := p.Transfer.State(t)
	what := "canary written and read back in " + secs(c.Took)
	if !c.Wrote {
		what = "canary read from the read-only module in " + secs(c.Took)
	}
	if d := p.Transfer.Describe(t); d != "" {
		what += " " + d
	}
	return st, what
}

// listedText names the modules the daemon listed.
func listedText(mods []Module) string {
	if len(mods) == 0 {
		return "no modules listed"
	}
	names := make([]string, 0, len(mods))
	for i, m := range mods {
		if i == 10 {
			names = append(names, "...")
			break
		}
		names = append(names, plugin.Clean(m.Name, 64))
	}
	return "listed: " + strings.Join(names, " ")
}

// perfdata is what was measured, up to the step that failed.
func perfdata(o Observation, p Policy) []plugin.Perf {
	var out []plugin.Perf
	if o.Greeted {
		cp := p.Connect.Perf("connect_time", o.Listing.Connect.Seconds(), "s")
		cp.Min = plugin.F(0)
		out = append(out, cp, plugin.Perf{Label: "protocol", Value: float64(o.Listing.Greeting.Protocol)})
	}
	if c := o.Canary; c != nil {
		tp := p.Transfer.Perf("transfer_time", c.Took.Seconds(), "s")
		tp.Min = plugin.F(0)
		tp.Unknown = c.Err != nil
		out = append(out, tp)
	}
	return out
}

// describe is the long output: what the daemon is and said.
func describe(o Observation, p Policy) []string {
	var l []string
	if o.Greeted {
		g := o.Listing.Greeting
		s := "greeting " + quote(g.String(), 200) + ", negotiated protocol " + strconv.Itoa(o.Listing.Protocol) + ", after " + secs(o.Listing.Connect)
		l = append(l, s)
	}
	for _, m := range o.Listing.Modules {
		s := "module " + plugin.Clean(m.Name, 64)
		if c := strings.TrimSpace(m.Comment); c != "" {
			s += ": " + plugin.Clean(c, 120)
		}
		l = append(l, s)
	}
	for _, m := range o.Modules {
		if a := m.Access; a != nil && a.Authenticated {
			l = append(l, fmt.Sprintf("module %s: password accepted (%s) in %s", plugin.Clean(m.Name, 64), a.Digest, secs(a.Took)))
		}
	}
	if p.Verbose >= 1 {
		for i, line := range o.Listing.MOTD {
			if i == 20 {
				l = append(l, "motd: ...")
				break
			}
			l = append(l, "motd: "+plugin.Clean(line, 0))
		}
	}
	if c := o.Canary; c != nil && c.Err == nil {
		l = append(l, fmt.Sprintf("canary %s: %d bytes", CanaryName, c.Bytes))
	}
	return l
}

// secs prints a duration in seconds with a precision that suits it.
func secs(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s >= 10:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	case s >= 0.01:
		return strconv.FormatFloat(s, 'f', 3, 64) + "s"
	}
	return strconv.FormatFloat(s, 'f', 6, 64) + "s"
}
