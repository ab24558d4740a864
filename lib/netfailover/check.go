package netfailover

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

// Flag names, used in usage messages too.
const (
	flagHost         = "host"
	flagMinTargets   = "min-targets"
	flagMethod       = "method"
	flagPort         = "port"
	flagCount        = "count"
	flagInterval     = "interval"
	flagProbeTimeout = "probe-timeout"
)

type methodValue struct{ m *probe.Method }

func (v methodValue) String() string { return string(*v.m) }
func (v methodValue) Set(s string) error {
	m, err := probe.ParseMethod(s)
	if err == nil {
		*v.m = m
	}
	return err
}
func (methodValue) Type() string { return "method" }

// MasterProber asks the master to probe targets from its side.
type MasterProber func(ctx context.Context, cfg *config.Config, targets []netip.Addr, o probe.Options) ([]probe.Result, error)

// checkConfig is check_pbx_net_failover's flags and its seams to the
// system (tests replace them).
type checkConfig struct {
	hosts      []string
	minTargets int
	method     probe.Method
	ports      []int
	count      int
	interval   time.Duration
	timeout    time.Duration

	targets []netip.Addr // from hosts, by validate

	probeLocal  func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result
	probeMaster MasterProber
}

// Spec is check_pbx_net_failover.
func Spec() plugin.Spec { return newConfig().spec() }

func newConfig() *checkConfig {
	return &checkConfig{
		minTargets:  1,
		method:      probe.ICMP,
		probeLocal:  probe.ProbeAll,
		probeMaster: askMaster,
	}
}

func (c *checkConfig) spec() plugin.Spec {
	return plugin.Spec{
		Name:   "PBX_NET_FAILOVER",
		Binary: "check_pbx_net_failover",
		Description: "Run on the slave: probes the telephony targets (gateways, SIP trunks, the phones' router) from\n" +
			"here and, at the same time, asks the master over SSH to probe the same targets with the same options.\n" +
			"The master reaching fewer than --min-targets while this slave reaches at least that many → CRITICAL\n" +
			"(a failover moves the PBX to the side that still has the network). Neither reaching them → WARNING:\n" +
			"the telephony network is down for both nodes and a failover would not help. The master reaching a\n" +
			"target the slave reaches but fewer than all, or the slave reaching too few → WARNING. The master not\n" +
			"answering over SSH → UNKNOWN (check_pbx_master_alive judges that). A target counts as reachable on\n" +
			"one answer of --count. Targets default to [telephony] targets of cluster.toml.",
		Examples: []string{
			"check_pbx_net_failover                                  # [telephony] targets of cluster.toml",
			"check_pbx_net_failover -H 192.0.2.1 -H 192.0.2.2 --min-targets 2",
			"check_pbx_net_failover -H 192.0.2.1 --method both --port 5060",
		},
		DefaultRole: plugin.RoleSlave,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&c.hosts, flagHost, "H", nil, "telephony target IP; repeat for several (default: [telephony] targets of cluster.toml)")
	fs.IntVar(&c.minTargets, flagMinTargets, 1, "targets a node must reach to count as connected to the telephony network")
	fs.Var(methodValue{&c.method}, flagMethod, "icmp, tcp, both or banner (as check_pbx_master_alive)")
	fs.IntSliceVarP(&c.ports, flagPort, "p", nil, "TCP port for tcp/both/banner; repeatable or comma-separated")
	fs.IntVarP(&c.count, flagCount, "n", probe.DefaultCount, "probes per target (per port for TCP)")
	fs.DurationVar(&c.interval, flagInterval, probe.DefaultInterval, "time between probes")
	fs.DurationVar(&c.timeout, flagProbeTimeout, probe.DefaultTimeout, "how long each probe may wait for its answer")
}

func (c *checkConfig) options() probe.Options {
	return probe.Options{Method: c.method, Count: c.count, Interval: c.interval, Timeout: c.timeout, Ports: c.ports}
}

func (c *checkConfig) validate(env *plugin.Env) error {
	for _, h := range c.hosts {
		a, err := netip.ParseAddr(h)
		if err != nil {
			return plugin.Usagef("flag -H/--%s: %q is not an IP address", flagHost, h)
		}
		c.targets = append(c.targets, a.Unmap())
	}
	if c.minTargets < 1 {
		return plugin.Usagef("flag --%s: %d is less than 1", flagMinTargets, c.minTargets)
	}
	if len(c.targets) > 0 && c.minTargets > len(c.targets) {
		return plugin.Usagef("flag --%s: %d is more than the %d target(s) given with -H", flagMinTargets, c.minTargets, len(c.targets))
	}
	if c.count < 1 || c.count > 100 {
		return plugin.Usagef("flag --%s: %d is not from 1 to 100", flagCount, c.count)
	}
	if c.interval < time.Millisecond {
		return plugin.Usagef("flag --%s: %s is less than 1ms", flagInterval, c.interval)
	}
	if c.timeout < time.Millisecond {
		return plugin.Usagef("flag --%s: %s is less than 1ms", flagProbeTimeout, c.timeout)
	}
	for _, p := range c.ports {
		if p < 1 || p > 65535 {
			return plugin.Usagef("flag --%s: %d is not a port from 1 to 65535", flagPort, p)
		}
	}
	if c.method.UsesTCP() && len(c.ports) == 0 {
		return plugin.Usagef("flag --%s: --%s %s needs at least one port", flagPort, flagMethod, c.method)
	}
	if !c.method.UsesTCP() && len(c.ports) > 0 {
		return plugin.Usagef("flag --%s: ports are for --%s tcp, both or banner, not %s", flagPort, flagMethod, c.method)
	}
	// The master's answer also needs the SSH round trip: half of -t at most.
	if b := c.options().Budget(); 2*b >= env.Timeout {
		return plugin.Usagef("flags --%s/--%s/--%s: probing may take %s, more than half of -t %s (the master's answer must come back over SSH too)",
			flagCount, flagInterval, flagProbeTimeout, b, env.Timeout)
	}
	return nil
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
	}
	if cfg == nil {
		return plugin.UsageResult(fmt.Errorf("no cluster config %s: check_pbx_net_failover asks the master over SSH (give --config)", path))
	}
	targets := c.targets
	if len(targets) == 0 {
		for i, s := range cfg.Telephony.Targets {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return plugin.UsageResult(fmt.Errorf("%s: telephony.targets[%d]: %q is not an IP address", cfg.Path(), i, s))
			}
			targets = append(targets, a.Unmap())
		}
		if len(targets) == 0 {
			return plugin.UsageResult(fmt.Errorf("no telephony target: give -H/--%s or set [telephony] targets in %s", flagHost, cfg.Path()))
		}
		if c.minTargets > len(targets) {
			return plugin.UsageResult(fmt.Errorf("flag --%s: %d is more than the %d target(s) in %s", flagMinTargets, c.minTargets, len(targets), cfg.Path()))
		}
	}
	o := Observation{Targets: targets, MinTargets: c.minTargets, Verbose: env.Verbose}
	if self := cfg.Self(); self != nil {
		o.SlaveName = self.Name
	}
	if p := cfg.Peer(); p != nil {
		o.MasterName = p.Name
	}
	opts := c.options()
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.String()
	}
	env.Step("probing %s from here and from %s over SSH (%s)", strings.Join(names, ", "), orMaster(o.MasterName), c.method)
	env.Debugf(2, "%d probes %s apart, each waiting up to %s: at most %s per target", c.count, c.interval, c.timeout, opts.Budget())

	var wg sync.WaitGroup
	wg.Go(func() { o.Slave = c.probeLocal(ctx, targets, opts) })
	var took time.Duration
	wg.Go(func() {
		// Most of what is left of -t, not all: a master that hangs must
		// come out as UNKNOWN here, not as this check's timeout, whose
		// CRITICAL would fail over on a question nobody answered.
		mctx, cancel := context.WithTimeout(ctx, masterWait(ctx))
		defer cancel()
		t0 := time.Now()
		o.Master, o.MasterErr = c.probeMaster(mctx, cfg, targets, opts)
		took = time.Since(t0)
		if o.MasterErr != nil && mctx.Err() != nil && ctx.Err() == nil {
			o.MasterErr = fmt.Errorf("no answer within %ss", plugin.FormatNumber(math.Round(took.Seconds()*10)/10))
		}
	})
	wg.Wait()
	env.Debugf(1, "the master answered in %s", took.Round(time.Millisecond))
	return Evaluate(o)
}

func orMaster(name string) string {
	if name == "" {
		return "the master"
	}
	return name
}

// masterWait is how long the master may take: what is left before -t, less
// a fifth of it (at most a second) kept back for the verdict.
func masterWait(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 5 * time.Second
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}
