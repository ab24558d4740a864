package services

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// Modes of looking for services (--mode).
const (
	ModeAuto    = "auto"
	ModeSystemd = "systemd"
	ModeProc    = "proc"
)

const (
	helpService = "a required service: process NAME, unit NAME.service; repeatable"
	helpProcess = "NAME=PROCESS: look for process PROCESS (exact /proc/PID/comm or base name of argv[0]) instead of NAME; declares NAME; repeatable"
	helpUnit    = "NAME=UNIT: the systemd unit of NAME (default NAME.service); declares NAME; repeatable"
	helpCmdline = "NAME=REGEX: match processes by REGEX over the command line (arguments joined by spaces; unanchored, Go RE2 syntax); with -s/--process both must match; declares NAME; repeatable"
	helpCount   = "NAME=RANGE: expected process count of NAME, a Nagios range (default " + DefaultCount + "; note '1' means 0:1, exactly one is 1:1); where a unit is asked, its state decides instead; repeatable"
	helpMode    = "auto: systemd units when systemd is PID 1 (" + DefaultSystemdRun + " exists), else processes; systemd: units (processes for a service when D-Bus fails and it has a process name or pattern); proc: processes only"
	helpProcfs  = "procfs root to read processes from"
)

// modeValue is --mode; a bad value is refused while flags are parsed.
type modeValue string

func (m *modeValue) String() string { return string(*m) }
func (m *modeValue) Type() string   { return "mode" }
func (m *modeValue) Set(v string) error {
	switch v {
	case ModeAuto, ModeSystemd, ModeProc:
		*m = modeValue(v)
		return nil
	}
	return fmt.Errorf("%q is not a mode (auto, systemd, proc)", v)
}

// options are check_pbx_services's flags.
type options struct {
	args   FlagArgs
	mode   modeValue
	procfs string

	flagSvcs []Service // built by validate from args
}

// deps are what the check finds out about the machine it runs on; tests
// replace them.
type deps struct {
	systemdRun string     // sd_booted's directory
	units      UnitSource // systemd over D-Bus
	selfPID    int
	selfExe    string // stat'ed to leave out other running copies of the check
}

func defaultDeps() deps {
	return deps{systemdRun: DefaultSystemdRun, units: SystemdUnits, selfPID: os.Getpid(), selfExe: "/proc/self/exe"}
}

func (o *options) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.args.Service, "service", "s", nil, helpService)
	fs.StringArrayVar(&o.args.Process, "process", nil, helpProcess)
	fs.StringArrayVar(&o.args.Unit, "unit", nil, helpUnit)
	fs.StringArrayVar(&o.args.Cmdline, "cmdline", nil, helpCmdline)
	fs.StringArrayVar(&o.args.Count, "count", nil, helpCount)
	fs.Var(&o.mode, "mode", helpMode)
	fs.StringVar(&o.procfs, "procfs", o.procfs, helpProcfs)
}

// validate builds the services given on flags. Whether there are any at
// all is decided by the check: cluster.toml is read only on a node where
// the check applies.
func (o *options) validate(_ *plugin.Env) error {
	if o.procfs == "" {
		return plugin.Usagef("flag --procfs: empty path")
	}
	svcs, err := FromFlags(o.args)
	if err != nil {
		return plugin.UsageError{Err: err}
	}
	o.flagSvcs = svcs
	return nil
}

// Spec is check_pbx_services.
func Spec() plugin.Spec { return newSpec(defaultDeps()) }

func newSpec(d deps) plugin.Spec {
	o := &options{mode: ModeAuto, procfs: DefaultProcfs}
	return plugin.Spec{
		Name:   "PBX_SERVICES",
		Binary: "check_pbx_services",
		Description: "Checks that the PBX's required services run on this node (the master by default), one line each.\n" +
			"Where systemd is PID 1 it asks systemd over D-Bus for each unit: active is OK; activating,\n" +
			"reloading or deactivating WARNING; failed, inactive or not found CRITICAL. Elsewhere it counts\n" +
			"processes in /proc by exact name (comm, which the kernel cuts at 15 bytes, or the base name of\n" +
			"argv[0]) and/or a regular expression over the command line, skipping zombies and kernel threads;\n" +
			"a count outside its range (default " + DefaultCount + ") is CRITICAL. The services come from the flags or, when\n" +
			"none is given, from [[services]] in cluster.toml (there a unit is checked only when `unit` is set).\n" +
			"The check never counts itself, the processes that started it (a shell or sudo carrying the same\n" +
			"pattern) or other running copies of itself, so a --cmdline pattern matching its own arguments is\n" +
			"harmless. Perfdata: NAME=process count with the range as critical, or 'NAME active'=0|1 from systemd.",
		Examples: []string{
			"check_pbx_services -s asterisk -s kamailio --process mariadb=mariadbd",
			"check_pbx_services -s asterisk --count asterisk=1:1",
			"check_pbx_services --cmdline 'kamailio=^/usr/sbin/kamailio .*-f /etc/kamailio/kamailio\\.cfg' --count kamailio=2:",
			"check_pbx_services --mode proc    # the [[services]] of cluster.toml",
		},
		DefaultRole: plugin.RoleMaster,
		Flags:       o.flags,
		Validate:    o.validate,
		Gate:        cluster.Gate,
		Check: func(ctx context.Context, env *plugin.Env) plugin.Result {
			return o.check(ctx, env, d)
		},
	}
}

// services is what to check: the flags' services, else cluster.toml's.
func (o *options) services(env *plugin.Env) ([]Service, *plugin.Result) {
	if !o.args.Empty() {
		return o.flagSvcs, nil
	}
	env.Step("reading config")
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		r := plugin.Result{State: plugin.Unknown, Summary: plugin.Clean(err.Error(), 0)}
		return nil, &r
	}
	var svcs []Service
	if cfg != nil {
		if svcs, err = FromConfig(cfg); err != nil {
			r := plugin.UsageResult(err)
			return nil, &r
		}
	}
	if len(svcs) == 0 {
		path := env.ConfigPath
		if path == "" {
			path = config.DefaultPath
		}
		where := "no " + path
		if cfg != nil {
			where = "no [[services]] in " + cfg.Path()
		}
		r := plugin.UsageResult(fmt.Errorf("no services to check: give -s NAME, --process NAME=PROCESS or --cmdline NAME=REGEX (%s)", where))
		return nil, &r
	}
	return svcs, nil
}

func (o *options) check(ctx context.Context, env *plugin.Env, d deps) plugin.Result {
	svcs, bad := o.services(env)
	if bad != nil {
		return *bad
	}
	for _, s := range svcs {
		env.Debugf(1, "looking for %s", s.describe())
	}
	booted := SystemdBooted(d.systemdRun)
	mode := string(o.mode)
	if mode == ModeAuto {
		mode = ModeProc
		if booted {
			mode = ModeSystemd
		}
		env.Debugf(1, "mode %s (%s present: %v)", mode, d.systemdRun, booted)
	}

	var res plugin.Result
	subs := make([]plugin.Result, len(svcs))
	var viaProc []int // indexes into svcs
	if mode == ModeSystemd {
		viaProc = o.checkUnits(ctx, env, d, svcs, subs, booted, &res)
	} else {
		for i, s := range svcs {
			if !s.HasMatcher() {
				subs[i] = plugin.Resultf(plugin.Unknown, "%s: no process or cmdline to look for without systemd (unit %s)", s.Name, s.Unit)
				continue
			}
			viaProc = append(viaProc, i)
		}
	}
	if len(viaProc) > 0 {
		if r := o.checkProcs(ctx, env, d, svcs, viaProc, subs, &res); r != nil {
			return *r
		}
	}
	res.Subs = subs
	return res
}

// checkUnits fills the sub-results of services with a unit from systemd
// and returns the services left to count in /proc: those without a unit,
// and, when systemd cannot be asked, those that have a process name or
// pattern too.
func (o *options) checkUnits(ctx context.Context, env *plugin.Env, d deps, svcs []Service, subs []plugin.Result, booted bool, res *plugin.Result) (viaProc []int) {
	var idx []int
	var units []string
	for i, s := range svcs {
		if s.Unit == "" {
			viaProc = append(viaProc, i)
			continue
		}
		idx = append(idx, i)
		units = append(units, s.Unit)
	}
	if len(units) == 0 {
		return viaProc
	}
	// D-Bus gets half the time left, so that a hung bus still leaves time
	// to count processes instead.
	budget := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) / 2
	}
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	env.Step("asking systemd over D-Bus for %s", strings.Join(units, ", "))
	states, err := d.units(sctx, units)
	if err == nil && len(states) != len(units) {
		err = fmt.Errorf("systemd answered %d units for %d asked", len(states), len(units))
	}
	if err == nil {
		for k, i := range idx {
			subs[i] = UnitResult(svcs[i], states[k])
			env.Debugf(2, "%s: load %s, active %s, sub %s, main pid %d", states[k].Name, states[k].LoadState, states[k].ActiveState, states[k].SubState, states[k].MainPID)
		}
		return viaProc
	}
	if ctx.Err() != nil {
		// The check's own deadline, not D-Bus's share of it: the timeout
		// report says so.
		return viaProc
	}
	if sctx.Err() != nil {
		err = fmt.Errorf("systemd did not answer over D-Bus within %s", budget.Round(100*time.Millisecond))
	}
	msg := plugin.Clean(err.Error(), 2*plugin.MaxPeerText)
	if !booted {
		msg = "systemd is not PID 1 here (" + d.systemdRun + " is missing): " + msg
	}
	var counted []string
	for _, i := range idx {
		s := svcs[i]
		if s.HasMatcher() {
			viaProc = append(viaProc, i)
			counted = append(counted, s.Name)
			continue
		}
		subs[i] = plugin.Resultf(plugin.Unknown, "%s: cannot ask systemd for %s: %s", s.Name, s.Unit, msg)
	}
	if len(counted) > 0 {
		res.Long = append(res.Long, fmt.Sprintf("systemd could not be asked, processes counted instead for %s: %s", strings.Join(counted, ", "), msg))
	}
	return viaProc
}

// checkProcs fills the sub-results of the services counted in /proc. A
// process table that cannot be read at all is the whole check's UNKNOWN.
func (o *options) checkProcs(ctx context.Context, env *plugin.Env, d deps, svcs []Service, which []int, subs []plugin.Result, res *plugin.Result) *plugin.Result {
	env.Step("reading processes under %s", o.procfs)
	list, err := ReadProcs(ctx, o.procfs)
	if err != nil {
		if ctx.Err() != nil {
			return &plugin.Result{State: plugin.Unknown, Summary: "cancelled"} // replaced by the timeout report
		}
		r := plugin.Result{State: plugin.Unknown, Summary: plugin.Clean(err.Error(), 0)}
		for i, s := range subs {
			if s.Summary != "" {
				r.Subs = append(r.Subs, subs[i])
			}
		}
		return &r
	}
	env.Debugf(2, "%d processes under %s, %d vanished while read", len(list.Procs), o.procfs, list.Vanished)
	if n := len(list.Unreadable); n > 0 {
		what := "processes could not be read and were not counted"
		if n == 1 {
			what = "process could not be read and was not counted"
		}
		res.Long = append(res.Long, fmt.Sprintf("%d %s; first: %s", n, what, plugin.Clean(list.Unreadable[0].Error(), 0)))
		for _, e := range list.Unreadable[1:] {
			env.Debugf(1, "%s", plugin.Clean(e.Error(), 0))
		}
	}
	if !hasPID(list.Procs, 1) && len(list.Procs) > 0 {
		// hidepid=invisible hides other users' processes from a
		// non-root reader: the PBX's services would all look down.
		res.Long = append(res.Long, fmt.Sprintf("PID 1 is not visible under %s: is it mounted with hidepid? Other users' processes cannot be counted.", o.procfs))
	}
	excluded := Excluded(list.Procs, d.selfPID)
	var self Self
	if fi, err := os.Stat(d.selfExe); err == nil {
		self.Exe = fi
	}
	byPID := make(map[int]Proc, len(list.Procs))
	for _, p := range list.Procs {
		byPID[p.PID] = p
	}
	for _, i := range which {
		s := svcs[i]
		pids := Match(s, list.Procs, excluded)
		kept := pids[:0]
		for _, pid := range pids {
			if self.SameExe(o.procfs, pid) {
				env.Debugf(2, "%s: pid %d left out: another run of this check", s.Name, pid)
				continue
			}
			kept = append(kept, pid)
			env.Debugf(2, "%s: pid %d: %s", s.Name, pid, plugin.Clean(strings.Join(byPID[pid].Argv, " "), 0))
		}
		subs[i] = ProcResult(s, kept)
	}
	return nil
}

func hasPID(procs []Proc, pid int) bool {
	for _, p := range procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}
