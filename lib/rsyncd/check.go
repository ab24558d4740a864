package rsyncd

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagHost             = "host"
	flagPort             = "port"
	flagModule           = "module"
	flagUser             = "user"
	flagPasswordFile     = "password-file"
	flagNoAuth           = "no-auth"
	flagCanary           = "canary"
	flagRsync            = "rsync-binary"
	flagTransferWarning  = "canary-warning"
	flagTransferCritical = "canary-critical"
)

// PasswordEnv is the environment variable the password may come from, as
// for rsync itself.
const PasswordEnv = "RSYNC_PASSWORD"

// Defaults.
const (
	DefaultPort = 873
	// DefaultHost is asked when cluster.toml names no cluster IP.
	DefaultHost = "127.0.0.1"
	// The greeting comes once the daemon has forked and read its config:
	// milliseconds; a second means the host is thrashing.
	DefaultWarning  = "1"
	DefaultCritical = "3"
)

// checkConfig is check_pbx_rsync's flags.
type checkConfig struct {
	host         string
	port         int
	modules      []string
	user         string
	passwordFile string
	noAuth       bool
	canary       bool
	rsync        string
	connect      threshold.Pair
	transfer     threshold.Pair
}

// Spec is check_pbx_rsync.
func Spec() plugin.Spec {
	c := &checkConfig{connect: threshold.Pairf(DefaultWarning, DefaultCritical)}
	return plugin.Spec{
		Name:   "PBX_RSYNC",
		Binary: "check_pbx_rsync",
		Description: "Checks the rsync daemon that receives the master's file sync: it must greet (@RSYNCD:),\n" +
			"list its modules and list or accept each expected module (-m, default [sync] rsync_module of\n" +
			"cluster.toml); with a password (--password-file, $" + PasswordEnv + " or [sync] rsync_password) it logs\n" +
			"in to each. --canary writes " + CanaryName + " into the first module with the rsync binary and reads\n" +
			"it back (a read-only module: reads the one there), timed. Host defaults to this node's\n" +
			"cluster IP, where the master pushes to. A refused, silent or non-rsync port, a missing module\n" +
			"and a rejected password are CRITICAL (silent: -t's state). Perfdata: connect_time (to the\n" +
			"greeting, -w/-c in seconds), protocol, transfer_time (--canary).",
		Examples: []string{
			"check_pbx_rsync                                   # this node's cluster IP, [sync] of cluster.toml",
			"check_pbx_rsync --canary --canary-warning 2 --canary-critical 5",
			"check_pbx_rsync -H 198.51.100.2 -m pbx -m voicemail -u pbxsync --password-file /etc/pbxha/rsync.pw",
		},
		DefaultRole: plugin.RoleSlave,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringVarP(&c.host, flagHost, "H", "", "rsync daemon host (default: this node's cluster_ip in cluster.toml, else "+DefaultHost+")")
	fs.IntVarP(&c.port, flagPort, "p", DefaultPort, "rsync daemon port")
	fs.StringArrayVarP(&c.modules, flagModule, "m", nil, "module that must exist; repeat for several (default: [sync] rsync_module of cluster.toml)")
	fs.StringVarP(&c.user, flagUser, "u", "", "user to log in to the modules as (default: [sync] rsync_user of cluster.toml)")
	fs.StringVar(&c.passwordFile, flagPasswordFile, "", "file holding the password on its first line (default: $"+PasswordEnv+", else [sync] rsync_password)")
	fs.BoolVar(&c.noAuth, flagNoAuth, false, "do not log in to the modules, only list them (the daemon logs each login the check ends early as an error)")
	fs.BoolVar(&c.canary, flagCanary, false, "also write "+CanaryName+" into the first module with the rsync binary and read it back, timed")
	fs.StringVar(&c.rsync, flagRsync, DefaultRsync, "the rsync binary --canary runs")
	fs.VarP(&c.connect.Warn, "warning", "w", "range for connect_time (dial to greeting) in seconds: WARNING outside it")
	fs.VarP(&c.connect.Crit, "critical", "c", "range for connect_time in seconds: CRITICAL outside it")
	fs.Var(&c.transfer.Warn, flagTransferWarning, "range for the canary's transfer_time in seconds: WARNING outside it (default: none)")
	fs.Var(&c.transfer.Crit, flagTransferCritical, "range for the canary's transfer_time in seconds: CRITICAL outside it (default: none)")
}

func (c *checkConfig) validate(*plugin.Env) error {
	if c.port < 1 || c.port > 65535 {
		return plugin.Usagef("flag -p/--%s: %d is not a port from 1 to 65535", flagPort, c.port)
	}
	if c.host != "" && strings.ContainsAny(c.host, " \t\r\n/@") {
		return plugin.Usagef("flag -H/--%s: %q is not a host name or address", flagHost, c.host)
	}
	for _, m := range c.modules {
		if err := moduleName(m); err != nil {
			return plugin.Usagef("flag -m/--%s: %v", flagModule, err)
		}
	}
	if err := userName(c.user); err != nil {
		return plugin.Usagef("flag -u/--%s: %v", flagUser, err)
	}
	if c.rsync == "" {
		return plugin.Usagef("flag --%s: empty", flagRsync)
	}
	if (c.transfer.Warn.IsSet() || c.transfer.Crit.IsSet()) && !c.canary {
		return plugin.Usagef("flags --%s/--%s need --%s", flagTransferWarning, flagTransferCritical, flagCanary)
	}
	return nil
}

// moduleName refuses what the protocol cannot carry as a module name: a
// line break would end the request, "/" starts the path inside the module,
// and "#" starts a daemon command ("#list").
func moduleName(m string) error {
	switch {
	case m == "":
		return fmt.Errorf("empty module name")
	case strings.ContainsAny(m, "\r\n\x00/"), strings.HasPrefix(m, "#"), strings.TrimSpace(m) != m:
		return fmt.Errorf("%q is not a module name", m)
	}
	return nil
}

// userName refuses what would break the "user response" line.
func userName(u string) error {
	if strings.ContainsAny(u, " \t\r\n\x00") {
		return fmt.Errorf("%q holds a space or line break, which the login line cannot carry", u)
	}
	return nil
}

// target is what to check, resolved from flags, environment and
// cluster.toml.
type target struct {
	host    string
	modules []string
	user    string
	cred    *Credentials // with a password only
	src     string       // where the password came from, for -v
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	t, r := c.resolve(env)
	if r != nil {
		return *r
	}
	// Keep back part of -t, so that a silent daemon is reported by the
	// check itself (the step, what arrived) rather than by the backstop.
	bctx, cancel := context.WithTimeout(ctx, budget(ctx))
	defer cancel()
	addr := net.JoinHostPort(t.host, strconv.Itoa(c.port))
	o := Options{Addr: addr, Debugf: env.Debugf, Step: env.Step}
	req := Request{Modules: t.modules, Cred: t.cred, Login: t.cred != nil && !c.noAuth && !c.canary}
	if c.canary {
		req.Canary = &CanaryOptions{Rsync: c.rsync, Host: t.host, Port: c.port, User: t.user, Debugf: env.Debugf, Step: env.Step}
		if t.cred != nil {
			req.Canary.Password = t.cred.Password
		}
	}
	if t.cred != nil {
		env.Debugf(1, "rsync daemon %s, user %s, password from %s", addr, plugin.Clean(t.cred.User, 64), t.src)
	}
	obs := Probe(bctx, o, req)
	return Evaluate(obs, Policy{Connect: c.connect, Transfer: c.transfer, TimeoutState: env.TimeoutSt, Verbose: env.Verbose})
}

// budget is how long the sessions may take: most of what is left before
// -t, at most a second kept back.
func budget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return plugin.DefaultTimeout
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}

// resolve finds host, modules, user and password: flags first, then the
// environment (password), then cluster.toml's node and [sync]. r is the
// result to return instead when that fails.
func (c *checkConfig) resolve(env *plugin.Env) (target, *plugin.Result) {
	fail := func(r plugin.Result) (target, *plugin.Result) { return target{}, &r }
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return fail(plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0)))
	}
	var sync config.Sync
	if cfg != nil {
		sync = cfg.Sync
	}

	t := target{host: c.host, modules: c.modules}
	if t.host == "" {
		t.host = DefaultHost
		if cfg != nil && len(cfg.Nodes) > 0 {
			self := cfg.Self()
			if self == nil || self.ClusterIP == "" {
				return fail(plugin.UsageResult(fmt.Errorf("cannot tell this node's cluster IP from %s (set node and its cluster_ip), or give -H/--%s", path, flagHost)))
			}
			t.host = self.ClusterIP
		}
	}
	if len(t.modules) == 0 && sync.RsyncModule != "" {
		if err := moduleName(sync.RsyncModule); err != nil {
			return fail(plugin.UsageResult(fmt.Errorf("%s: sync.rsync_module: %v", path, err)))
		}
		t.modules = []string{sync.RsyncModule}
	}
	if c.canary && len(t.modules) == 0 {
		return fail(plugin.UsageResult(fmt.Errorf("--%s needs a module: give -m/--%s or set [sync] rsync_module in %s", flagCanary, flagModule, path)))
	}

	user := c.user
	if user == "" {
		user = sync.RsyncUser
		if err := userName(user); err != nil {
			return fail(plugin.UsageResult(fmt.Errorf("%s: sync.rsync_user: %v", path, err)))
		}
	}
	t.user = user
	var pw, src string
	switch {
	case c.passwordFile != "":
		env.Step("reading the password file")
		src = "--" + flagPasswordFile + " " + c.passwordFile
		if pw, err = config.ReadSecretFile(c.passwordFile); err != nil {
			return fail(plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0)))
		}
	case os.Getenv(PasswordEnv) != "":
		src = "$" + PasswordEnv
		pw = os.Getenv(PasswordEnv)
	case sync.RsyncPassword.IsSet():
		src = "sync.rsync_password in " + path
		if pw, err = sync.RsyncPassword.Value(); err != nil {
			return fail(plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0)))
		}
	}
	if src != "" && pw == "" {
		return fail(plugin.UsageResult(fmt.Errorf("the rsync password from %s is empty", src)))
	}
	if strings.ContainsAny(pw, "\r\n\x00") {
		return fail(plugin.UsageResult(fmt.Errorf("the rsync password from %s holds a line break or NUL", src)))
	}
	if pw != "" {
		if user == "" {
			return fail(plugin.UsageResult(fmt.Errorf("a password (from %s) but no user: give -u/--%s or set [sync] rsync_user in %s", src, flagUser, path)))
		}
		t.cred = &Credentials{User: user, Password: pw}
		t.src = src
	}
	return t, nil
}
