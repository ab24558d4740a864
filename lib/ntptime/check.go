package ntptime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagHost            = "host"
	flagPort            = "port"
	flagStratumWarning  = "stratum-warning"
	flagStratumCritical = "stratum-critical"
	flagAny             = "any"
	flagLocal           = "local"
	flagChrony          = "chrony"
	flagTimesyncDir     = "timesyncd-dir"
	flagPeer            = "peer"
	flagSkewWarning     = "skew-warning"
	flagSkewCritical    = "skew-critical"
)

// Default offset thresholds in seconds: phones' registration expiries
// tolerate about a second; CDRs and TLS want less drift than that.
const (
	DefaultWarning  = "0.5"
	DefaultCritical = "1"
)

// checkConfig is check_pbx_time's flags.
type checkConfig struct {
	hosts       []string
	port        int
	offset      threshold.Pair
	stratum     threshold.Pair
	any         bool
	local       bool
	chrony      string
	timesyncDir string
	peer        bool
	skew        threshold.Pair

	servers []Server // from hosts, by validate
}

// Spec is check_pbx_time.
func Spec() plugin.Spec {
	c := &checkConfig{
		offset: threshold.Pairf(DefaultWarning, DefaultCritical),
		skew:   threshold.Pairf(DefaultSkewWarning, DefaultSkewCritical),
	}
	return plugin.Spec{
		Name:   "PBX_TIME",
		Binary: "check_pbx_time",
		Description: "Checks this node's clock against NTP servers (SNTP): |offset| against -w/-c in seconds,\n" +
			"the servers' stratum and sync state; a server that does not answer is CRITICAL. Every server\n" +
			"is a sub-result and the worst decides, unless --any: then the best server decides, as\n" +
			"check_ntp_time does. With --local it also asks this node's time daemon (chronyd over its\n" +
			"command socket or UDP port 323, else systemd-timesyncd) whether the clock is synchronised.\n" +
			"With --peer it also reads the other node's clock over SSH (cluster.toml [ssh]) and judges\n" +
			"|skew| against --skew-warning/--skew-critical; a peer that cannot be asked is UNKNOWN.\n" +
			"Perfdata offset is signed: positive when the local clock is behind the server; peer_skew\n" +
			"is positive when the peer's clock is ahead of this node's.",
		Examples: []string{
			"check_pbx_time                          # the [ntp] servers of cluster.toml",
			"check_pbx_time -H 192.0.2.1 -w 0.5 -c 1 --local",
			"check_pbx_time -H ntp1.example.net -H ntp2.example.net --any --stratum-warning 10",
			"check_pbx_time --local --peer --skew-warning 0.2 --skew-critical 0.5",
		},
		DefaultRole: plugin.RoleAny,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&c.hosts, flagHost, "H", nil, "NTP server host[:port]; repeat for several (default: [ntp] servers of cluster.toml)")
	fs.IntVarP(&c.port, flagPort, "p", DefaultPort, "port for servers given without one")
	fs.VarP(&c.offset.Warn, "warning", "w", "range for |offset| in seconds: WARNING outside it")
	fs.VarP(&c.offset.Crit, "critical", "c", "range for |offset| in seconds: CRITICAL outside it")
	fs.Var(&c.stratum.Warn, flagStratumWarning, "range for the servers' stratum: WARNING outside it (default: none)")
	fs.Var(&c.stratum.Crit, flagStratumCritical, "range for the servers' stratum: CRITICAL outside it (default: none)")
	fs.BoolVar(&c.any, flagAny, false, "the best server decides the state, not the worst (check_ntp_time's way)")
	fs.BoolVar(&c.local, flagLocal, false, "also ask this node's time daemon whether the clock is synchronised")
	fs.StringVar(&c.chrony, flagChrony, "", "ask only this chronyd: its socket path or host[:port] (UDP, default port 323); implies --local\n(default: "+DefaultChronySocket+", then "+DefaultChronyUDP+", then systemd-timesyncd)")
	fs.StringVar(&c.timesyncDir, flagTimesyncDir, DefaultTimesyncDir, "systemd-timesyncd's runtime directory (holds \"synchronized\" when it is)")
	fs.BoolVar(&c.peer, flagPeer, false, "also measure the clock skew to the other node over SSH (cluster.toml [ssh])")
	fs.Var(&c.skew.Warn, flagSkewWarning, "range for |skew| to the peer in seconds: WARNING outside it")
	fs.Var(&c.skew.Crit, flagSkewCritical, "range for |skew| to the peer in seconds: CRITICAL outside it")
}

func (c *checkConfig) validate(*plugin.Env) error {
	if c.port < 1 || c.port > 65535 {
		return plugin.Usagef("flag --%s: %d is not a port from 1 to 65535", flagPort, c.port)
	}
	for _, h := range c.hosts {
		s, err := ParseServer(h, c.port)
		if err != nil {
			return plugin.Usagef("flag -H/--%s: %v", flagHost, err)
		}
		c.servers = append(c.servers, s)
	}
	if c.chrony != "" {
		c.local = true
		if !strings.HasPrefix(c.chrony, "/") {
			if _, err := hostPort(c.chrony, 323); err != nil {
				return plugin.Usagef("flag --%s: %v (give a socket path or host[:port])", flagChrony, err)
			}
		}
	}
	if c.timesyncDir == "" {
		return plugin.Usagef("flag --%s: empty", flagTimesyncDir)
	}
	return nil
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	var (
		cfg    *config.Config
		cfgErr error
	)
	if len(c.servers) == 0 || c.peer {
		cfg, cfgErr = loadConfig(env)
	}
	servers := c.servers
	if len(servers) == 0 {
		var r *plugin.Result
		if servers, r = configServers(env, cfg, cfgErr, c.port); r != nil {
			return *r
		}
	}
	wait := queryWait(ctx)
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Name
		env.Debugf(2, "server %s at %s, waiting up to %s", s.Name, s.Addr, wait.Round(time.Millisecond))
	}
	step := "asking NTP server(s) " + strings.Join(names, ", ")
	if c.local {
		step += ", the local time daemon"
	}
	if c.peer {
		step += ", the peer node over SSH"
	}
	env.Step("%s", step)

	var (
		local    *LocalStatus
		peerSkew *PeerSample
		wg       sync.WaitGroup
	)
	if c.peer {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			var s PeerSample
			switch {
			case cfgErr != nil:
				s.Err = cfgErr
			case cfg == nil:
				s.Err = fmt.Errorf("no %s to find the peer in", config.DefaultPath)
			default:
				s = MeasurePeer(pctx, cfg)
			}
			env.Debugf(2, "peer %s: skew %v, rtt %v, err %v", s.Node, s.Skew, s.RTT, s.Err)
			peerSkew = &s
		})
	}
	if c.local {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			st := ReadLocal(lctx, LocalOptions{Chrony: c.chrony, TimesyncDir: c.timesyncDir})
			local = &st
		}()
	}
	samples := QueryAll(ctx, servers, wait)
	wg.Wait()
	p := Policy{
		Offset:       c.offset,
		Stratum:      c.stratum,
		Skew:         c.skew,
		Any:          c.any,
		TimeoutState: env.TimeoutSt,
		Verbose:      env.Verbose,
	}
	r := Evaluate(samples, local, p)
	if peerSkew != nil {
		r.Subs = append(r.Subs, EvaluatePeer(*peerSkew, p))
	}
	return r
}

// loadConfig reads cluster.toml: (nil, nil) when there is none and none
// was named.
func loadConfig(env *plugin.Env) (*config.Config, error) {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	return config.Load(env.ConfigPath, env.ConfigSet)
}

// configServers takes [ntp] servers from cluster.toml (cfg, or err from
// loading it); r is the result to return instead when loading failed or
// the file lists none.
func configServers(env *plugin.Env, cfg *config.Config, err error, port int) ([]Server, *plugin.Result) {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	if err != nil {
		r := plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
		return nil, &r
	}
	var servers []Server
	if cfg != nil {
		for i, h := range cfg.NTP.Servers {
			s, err := ParseServer(h, port)
			if err != nil {
				r := plugin.UsageResult(fmt.Errorf("%s: ntp.servers[%d]: %v", cfg.Path(), i, err))
				return nil, &r
			}
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		r := plugin.UsageResult(fmt.Errorf("no NTP server: give -H/--%s or set [ntp] servers in %s", flagHost, path))
		return nil, &r
	}
	return servers, nil
}

// queryWait is how long each server may take: most of what is left before
// -t, so that a silent server is reported as such, with the others' results,
// before the whole check times out.
func queryWait(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 5 * time.Second
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}
