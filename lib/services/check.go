package services

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Modes of looking.
const (
	ModeAuto    = "auto"
	ModeSystemd = "systemd"
	ModeProc    = "proc"
)

type options struct {
	names    []string
	cmdlines []string
	counts   []string
	mode     string
	procfs   string
	runSD    string

	svcs []Service
}

// Spec is check_pbx_services.
func Spec() plugin.Spec {
	o := &options{}
	return plugin.Spec{
		Name:   "PBX_SERVICES",
		Binary: "check_pbx_services",
		Description: `Checks that the PBX's required services run on this node (the master by default).
Where systemd is PID 1, each service's unit state is asked over D-Bus; otherwise processes
in /proc are counted by exact name (comm or argv[0]) or by a regular expression over the
full command line, and the count is compared with a range (default 1:). The services come
from -s/--cmdline flags or the [[services]] of cluster.toml. The check never counts itself.`,
		Examples: []string{
			"check_pbx_services -s asterisk -s mariadbd",
			"check_pbx_services --cmdline 'kamailio=kamailio -f /etc/kamailio/kamailio.cfg' --count kamailio=4:",
			"check_pbx_services --config /etc/pbxha/cluster.toml",
		},
		DefaultRole: plugin.RoleMaster,
		Gate:        cluster.Gate,
		Flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVarP(&o.names, "service", "s", nil, "a service by process name (unit NAME.service under systemd); repeatable")
			fs.StringArrayVar(&o.cmdlines, "cmdline", nil, "NAME=REGEX: a service whose processes match REGEX over the full command line; repeatable")
			fs.StringArrayVar(&o.counts, "count", nil, "NAME=RANGE: expected number of processes of NAME (default 1:); repeatable")
			fs.StringVar(&o.mode, "mode", ModeAuto, "auto (systemd when it is PID 1, else /proc), systemd or proc")
			fs.StringVar(&o.procfs, "procfs", "/proc", "procfs root (fixtures stand in for it)")
			fs.StringVar(&o.runSD, "run-systemd", "/run/systemd/system", "exists when systemd is PID 1")
			fs.MarkHidden("run-systemd")
		},
		Validate: o.validate,
		Check:    o.check,
	}
}

func (o *options) validate(env *plugin.Env) error {
	switch o.mode {
	case ModeAuto, ModeSystemd, ModeProc:
	default:
		return plugin.Usagef("flag --mode: %q is not auto, systemd or proc", o.mode)
	}
	byName := map[string]*Service{}
	add := func(s Service) *Service {
		if old := byName[s.Name]; old != nil {
			return old
		}
		o.svcs = append(o.svcs, s)
		return nil
	}
	for _, n := range o.names {
		if strings.TrimSpace(n) == "" {
			return plugin.Usagef("flag --service: empty name")
		}
		add(Service{Name: n, Process: n, Unit: n + ".service"})
	}
	for _, a := range o.cmdlines {
		name, expr, err := ParseAssignment(a)
		if err != nil {
			return plugin.Usagef("flag --cmdline: %v", err)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return plugin.Usagef("flag --cmdline: %s: %v", name, err)
		}
		add(Service{Name: name, Cmdline: re})
	}
	if len(o.svcs) == 0 {
		cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
		if err != nil {
			return plugin.UsageError{Err: err}
		}
		if cfg != nil {
			for i, cs := range cfg.Services {
				s := Service{Name: cs.Name, Unit: cs.Unit, Process: cs.Process}
				if cs.Cmdline != "" {
					re, err := regexp.Compile(cs.Cmdline)
					if err != nil {
						return plugin.Usagef("%s: services[%d].cmdline: %v", cfg.Path(), i, err)
					}
					s.Cmdline = re
				}
				if cs.Count != "" {
					if err := s.Count.Set(cs.Count); err != nil {
						return plugin.Usagef("%s: services[%d].count: %v", cfg.Path(), i, err)
					}
				}
				add(s)
			}
		}
	}
	if len(o.svcs) == 0 {
		return plugin.Usagef("no services to check: give -s NAME or --cmdline NAME=REGEX, or [[services]] in cluster.toml")
	}
	for _, a := range o.counts {
		name, rng, err := ParseAssignment(a)
		if err != nil {
			return plugin.Usagef("flag --count: %v", err)
		}
		var found bool
		for i := range o.svcs {
			if o.svcs[i].Name == name {
				if err := o.svcs[i].Count.Set(rng); err != nil {
					return plugin.Usagef("flag --count: %s: %v", name, err)
				}
				found = true
			}
		}
		if !found {
			return plugin.Usagef("flag --count: no service named %q", name)
		}
	}
	for i := range o.svcs {
		if !o.svcs[i].Count.IsSet() {
			o.svcs[i].Count = threshold.MustParse("1:")
		}
	}
	return nil
}

func (o *options) check(ctx context.Context, env *plugin.Env) plugin.Result {
	mode := o.mode
	if mode == ModeAuto {
		mode = ModeProc
		if SystemdBooted(o.runSD) {
			mode = ModeSystemd
		}
	}
	env.Debugf(1, "mode: %s", mode)
	if mode == ModeSystemd {
		return o.checkSystemd(ctx, env)
	}
	return o.checkProc(ctx, env, o.svcs)
}

func (o *options) checkProc(ctx context.Context, env *plugin.Env, svcs []Service) plugin.Result {
	env.Step("reading processes from %s", o.procfs)
	procs, err := ReadProcs(ctx, o.procfs)
	if err != nil {
		return plugin.Resultf(plugin.Unknown, "reading processes from %s: %v", o.procfs, err)
	}
	env.Debugf(2, "%d processes", len(procs))
	return Evaluate(svcs, procs)
}

// checkSystemd asks systemd about services with a unit; services given only
// by a command-line pattern are counted in /proc. When D-Bus fails, services
// that also have a process name fall back to /proc; the rest are UNKNOWN.
func (o *options) checkSystemd(ctx context.Context, env *plugin.Env) plugin.Result {
	var units []string
	for _, s := range o.svcs {
		if s.Unit != "" {
			units = append(units, s.Unit)
		}
	}
	env.Step("asking systemd over D-Bus for %d units", len(units))
	states, dbusErr := UnitStates(ctx, units)
	var r plugin.Result
	var viaProc []Service
	for _, s := range o.svcs {
		switch {
		case s.Unit != "" && dbusErr == nil:
			u, ok := states[s.Unit]
			if !ok {
				u = UnitState{Name: s.Unit, Load: "not-found"}
			}
			r.Subs = append(r.Subs, UnitResult(s.Name, u))
		case s.Unit == "" || s.Process != "" || s.Cmdline != nil:
			viaProc = append(viaProc, s)
		default:
			r.Subs = append(r.Subs, plugin.Resultf(plugin.Unknown, "%s: %s", s.Name, plugin.Clean(dbusErr.Error(), 0)))
		}
	}
	if len(viaProc) > 0 {
		pr := o.checkProc(ctx, env, viaProc)
		if len(pr.Subs) == 0 {
			pr.Subs = []plugin.Result{pr}
		}
		r.Subs = append(r.Subs, pr.Subs...)
	}
	if dbusErr != nil {
		r.Long = append(r.Long, fmt.Sprintf("systemd not asked: %s", plugin.Clean(dbusErr.Error(), 0)))
	}
	return r
}
