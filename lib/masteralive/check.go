package masteralive

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/probe"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagTelIP        = "tel-ip"
	flagCluIP        = "clu-ip"
	flagMethod       = "method"
	flagPort         = "port"
	flagCount        = "count"
	flagInterval     = "interval"
	flagProbeTimeout = "probe-timeout"
	flagPLWarning    = "pl-warning"
	flagRTAWarning   = "rta-warning"
	flagMaster       = "master"
)

// Path names and perfdata prefixes; tel: and clu: scope a --port.
const (
	telName, telPrefix = "telephony", "tel"
	cluName, cluPrefix = "cluster", "clu"
)

// portSpec is one --port: a port for both paths, or "tel:N" / "clu:N" for
// one of them.
type portSpec struct {
	path string // "", telPrefix, cluPrefix
	port int
}

type portsValue struct{ specs *[]portSpec }

func (v portsValue) String() string {
	if v.specs == nil {
		return ""
	}
	parts := make([]string, len(*v.specs))
	for i, s := range *v.specs {
		parts[i] = strconv.Itoa(s.port)
		if s.path != "" {
			parts[i] = s.path + ":" + parts[i]
		}
	}
	return strings.Join(parts, ",")
}

func (v portsValue) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		var ps portSpec
		num := item
		if p, n, ok := strings.Cut(item, ":"); ok {
			if p != telPrefix && p != cluPrefix {
				return fmt.Errorf("%q: the path before ':' is tel or clu", item)
			}
			ps.path, num = p, n
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port from 1 to 65535", item)
		}
		ps.port = n
		*v.specs = append(*v.specs, ps)
	}
	return nil
}

func (portsValue) Type() string { return "[tel:|clu:]port" }

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

// checkConfig is check_pbx_master_alive's flags.
type checkConfig struct {
	telIP, cluIP string
	master       string
	method       probe.Method
	ports        []portSpec
	count        int
	interval     time.Duration
	timeout      time.Duration
	loss, rtt    threshold.Range

	tel, clu         netip.Addr // from the flags, by validate
	telPorts, cluPts []int
}

// Spec is check_pbx_master_alive.
func Spec() plugin.Spec {
	c := &checkConfig{method: probe.ICMP}
	return plugin.Spec{
		Name:   "PBX_MASTER_ALIVE",
		Binary: "check_pbx_master_alive",
		Description: "Run on the slave: probes the master's telephony IP and cluster IP at the same time.\n" +
			"Both silent → CRITICAL (the master is dead: failover); one silent → WARNING naming that path.\n" +
			"One answer of --count is enough for a path: loss and round trip only show in perfdata and may\n" +
			"warn (--pl-warning, --rta-warning). Methods: icmp (echo; a raw socket needs CAP_NET_RAW unless\n" +
			"net.ipv4.ping_group_range admits our gid), tcp (connect to --port; a refusal counts as an answer:\n" +
			"the master's kernel sent it), both (icmp or tcp), banner (connect and receive the service's first\n" +
			"bytes: detects a hung master whose kernel still answers; e.g. sshd on clu:22, the AMI on tel:5038).\n" +
			"IPs default to the peer's telephony_ip and cluster_ip in cluster.toml. With the defaults a dead\n" +
			"master is decided after " + probe.Options{}.Budget().String() + ".",
		Examples: []string{
			"check_pbx_master_alive                                  # ICMP to the peer in cluster.toml",
			"check_pbx_master_alive --tel-ip 192.0.2.11 --clu-ip 198.51.100.1 --pl-warning 50",
			"check_pbx_master_alive --method both --port 22 --port 5060",
			"check_pbx_master_alive --method banner --port clu:22 --port tel:5038   # a hung master is dead",
		},
		DefaultRole: plugin.RoleSlave,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.telIP, flagTelIP, "", "the master's telephony IP (default: the peer's telephony_ip in cluster.toml)")
	fs.StringVar(&c.cluIP, flagCluIP, "", "the master's cluster IP (default: the peer's cluster_ip in cluster.toml)")
	fs.StringVar(&c.master, flagMaster, "", "the master's name in messages (default: the peer's name in cluster.toml)")
	fs.Var(methodValue{&c.method}, flagMethod, "icmp, tcp, both or banner")
	fs.VarP(portsValue{&c.ports}, flagPort, "p", "TCP port for tcp/both/banner; repeatable or comma-separated; tel:N or clu:N for one path only")
	fs.IntVarP(&c.count, flagCount, "n", probe.DefaultCount, "probes per path (per port for TCP)")
	fs.DurationVar(&c.interval, flagInterval, probe.DefaultInterval, "time between probes")
	fs.DurationVar(&c.timeout, flagProbeTimeout, probe.DefaultTimeout, "how long each probe may wait for its answer")
	fs.Var(&c.loss, flagPLWarning, "range for a reachable path's packet loss in percent: WARNING outside it (default: none)")
	fs.Var(&c.rtt, flagRTAWarning, "range for a reachable path's mean round trip in seconds: WARNING outside it (default: none)")
}

func (c *checkConfig) validate(env *plugin.Env) error {
	for _, f := range []struct {
		name, val string
		dst       *netip.Addr
	}{{flagTelIP, c.telIP, &c.tel}, {flagCluIP, c.cluIP, &c.clu}} {
		if f.val == "" {
			continue
		}
		a, err := netip.ParseAddr(f.val)
		if err != nil {
			return plugin.Usagef("flag --%s: %q is not an IP address", f.name, f.val)
		}
		*f.dst = a
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
	if b := c.options(nil).Budget(); b >= env.Timeout {
		return plugin.Usagef("flags --%s/--%s/--%s: probing may take %s, not less than -t %s", flagCount, flagInterval, flagProbeTimeout, b, env.Timeout)
	}
	for _, p := range c.ports {
		if p.path != cluPrefix {
			c.telPorts = append(c.telPorts, p.port)
		}
		if p.path != telPrefix {
			c.cluPts = append(c.cluPts, p.port)
		}
	}
	if c.method.UsesTCP() {
		for _, x := range []struct {
			name  string
			ports []int
		}{{telPrefix, c.telPorts}, {cluPrefix, c.cluPts}} {
			if len(x.ports) == 0 {
				return plugin.Usagef("flag --%s: --%s %s needs a port for the %s path (--%s N or --%s %s:N)", flagPort, flagMethod, c.method, x.name, flagPort, flagPort, x.name)
			}
		}
	} else if len(c.ports) > 0 {
		return plugin.Usagef("flag --%s: ports are for --%s tcp, both or banner, not %s", flagPort, flagMethod, c.method)
	}
	return nil
}

func (c *checkConfig) options(ports []int) probe.Options {
	return probe.Options{Method: c.method, Count: c.count, Interval: c.interval, Timeout: c.timeout, Ports: ports}
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	master, tel, clu := c.master, c.tel, c.clu
	if !tel.IsValid() || !clu.IsValid() || master == "" {
		peer, r := configPeer(env, !tel.IsValid() || !clu.IsValid())
		if r != nil {
			return *r
		}
		if peer != nil {
			if master == "" {
				master = peer.Name
			}
			var err error
			if !tel.IsValid() {
				if tel, err = peerAddr(peer.TelephonyIP, "telephony_ip", flagTelIP); err != nil {
					return plugin.UsageResult(err)
				}
			}
			if !clu.IsValid() {
				if clu, err = peerAddr(peer.ClusterIP, "cluster_ip", flagCluIP); err != nil {
					return plugin.UsageResult(err)
				}
			}
		}
	}
	telPath := Path{Name: telName, Prefix: telPrefix, Addr: tel, Method: c.method}
	cluPath := Path{Name: cluName, Prefix: cluPrefix, Addr: clu, Method: c.method}
	if c.method.UsesTCP() {
		telPath.Ports, cluPath.Ports = c.telPorts, c.cluPts
	}
	env.Step("probing %s (%s %s, %s %s) with %s", orMaster(master), telName, tel, cluName, clu, c.method)
	env.Debugf(2, "%d probes %s apart, each waiting up to %s: at most %s per path", c.count, c.interval, c.timeout, c.options(nil).Budget())
	var wg sync.WaitGroup
	for _, p := range []*Path{&telPath, &cluPath} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Result = probe.Probe(ctx, p.Addr, c.options(p.Ports))
		}()
	}
	wg.Wait()
	if env.Verbose >= 2 && (c.method == probe.ICMP || c.method == probe.Both) {
		mode := "an unprivileged ping socket"
		if telPath.Result.Privileged {
			mode = "a raw socket (CAP_NET_RAW)"
		}
		env.Debugf(2, "icmp used %s", mode)
	}
	return Evaluate(master, telPath, cluPath, Policy{Loss: c.loss, RTT: c.rtt, Verbose: env.Verbose})
}

func orMaster(name string) string {
	if name == "" {
		return "the master"
	}
	return name
}

// configPeer reads the peer from cluster.toml. With need=false (every IP
// came from flags) a missing or unreadable file only costs the name.
func configPeer(env *plugin.Env, need bool) (*config.Node, *plugin.Result) {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if !need {
		if err != nil || cfg == nil {
			return nil, nil
		}
		return cfg.Peer(), nil
	}
	if err != nil {
		r := plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
		return nil, &r
	}
	if cfg == nil {
		r := plugin.UsageResult(fmt.Errorf("no master address: give --%s and --%s or a cluster config (%s)", flagTelIP, flagCluIP, path))
		return nil, &r
	}
	peer := cfg.Peer()
	if peer == nil {
		r := plugin.UsageResult(fmt.Errorf("%s: cannot tell which node is this one (set node = \"...\") and so which is the master; or give --%s and --%s", cfg.Path(), flagTelIP, flagCluIP))
		return nil, &r
	}
	return peer, nil
}

func peerAddr(s, key, flag string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("the peer has no %s in cluster.toml: set it or give --%s", key, flag)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer %s %q is not an IP address", key, s)
	}
	return a, nil
}
