package ami

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	flagHost          = "host"
	flagPort          = "port"
	flagUser          = "user"
	flagSecretFile    = "secret-file"
	flagTLS           = "tls"
	flagCA            = "ca"
	flagInsecure      = "insecure"
	flagMD5           = "md5"
	flagCallsWarning  = "calls-warning"
	flagCallsCritical = "calls-critical"
	flagMinUptime     = "min-uptime"
)

// SecretEnv is the environment variable the secret may come from.
const SecretEnv = "PBXHA_AMI_SECRET"

// Defaults.
const (
	DefaultHost    = "127.0.0.1"
	DefaultPort    = 5038 // manager.conf's port
	DefaultTLSPort = 5039 // manager.conf's tlsbindport, by convention
	// Ping is answered by the session's own thread: milliseconds on a
	// healthy PBX; seconds mean it is starved or stuck on a lock.
	DefaultWarning  = "500"
	DefaultCritical = "2000"
)

// checkConfig is check_pbx_ami's flags.
type checkConfig struct {
	host       string
	port       int
	user       string
	secretFile string
	tls        bool
	ca         string
	insecure   bool
	md5        bool
	ping       threshold.Pair
	calls      threshold.Pair
	minUptime  string

	minUp time.Duration // from minUptime, by validate
}

// Spec is check_pbx_ami.
func Spec() plugin.Spec {
	c := &checkConfig{ping: threshold.Pairf(DefaultWarning, DefaultCritical)}
	return plugin.Spec{
		Name:   "PBX_AMI",
		Binary: "check_pbx_ami",
		Description: "Checks Asterisk's Manager Interface: connects (TCP, or TLS with --tls), reads the greeting,\n" +
			"logs in, sends Ping (round trip against -w/-c in milliseconds) and CoreStatus (current calls\n" +
			"against --calls-warning/--calls-critical, uptime against --min-uptime), then logs off.\n" +
			"A refused, unreachable or silent server, a greeting that is not Asterisk's and a rejected\n" +
			"login are CRITICAL. Host, port, user and secret default to the [ami] section of cluster.toml;\n" +
			"the secret may also come from $" + SecretEnv + " or --secret-file, never from the command line.",
		Examples: []string{
			"check_pbx_ami                                   # [ami] of cluster.toml",
			"PBXHA_AMI_SECRET=... check_pbx_ami -H 127.0.0.1 -u monitor --calls-warning 80 --calls-critical 100",
			"check_pbx_ami -H pbx.example.net --tls --ca /etc/pbxha/ca.pem -u monitor --secret-file /etc/pbxha/ami.secret --min-uptime 10m",
		},
		DefaultRole: plugin.RoleMaster,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringVarP(&c.host, flagHost, "H", "", "AMI host (default: [ami] host of cluster.toml, else "+DefaultHost+")")
	fs.IntVarP(&c.port, flagPort, "p", 0, "AMI port (default: [ami] port of cluster.toml, else 5038; 5039 with --tls)")
	fs.StringVarP(&c.user, flagUser, "u", "", "AMI user, a manager.conf section (default: [ami] user of cluster.toml)")
	fs.StringVar(&c.secretFile, flagSecretFile, "", "file holding the AMI secret on its first line (default: $"+SecretEnv+", else [ami] secret of cluster.toml)")
	fs.BoolVar(&c.tls, flagTLS, false, "AMI over TLS (manager.conf tlsenable)")
	fs.StringVar(&c.ca, flagCA, "", "with --tls: PEM file of the CA(s) to verify the server's certificate with (default: the system's)")
	fs.BoolVar(&c.insecure, flagInsecure, false, "with --tls: do not verify the server's certificate")
	fs.BoolVar(&c.md5, flagMD5, false, "log in with the MD5 challenge, so the secret never crosses the network")
	fs.VarP(&c.ping.Warn, "warning", "w", "range for Ping's round trip in ms: WARNING outside it")
	fs.VarP(&c.ping.Crit, "critical", "c", "range for Ping's round trip in ms: CRITICAL outside it")
	fs.Var(&c.calls.Warn, flagCallsWarning, "range for the current calls: WARNING outside it (default: none)")
	fs.Var(&c.calls.Crit, flagCallsCritical, "range for the current calls: CRITICAL outside it (default: none)")
	fs.StringVar(&c.minUptime, flagMinUptime, "", "WARNING when Asterisk started less than this long ago, e.g. 10m or 600 (seconds)")
}

func (c *checkConfig) validate(*plugin.Env) error {
	if c.port < 0 || c.port > 65535 {
		return plugin.Usagef("flag -p/--%s: %d is not a port from 1 to 65535", flagPort, c.port)
	}
	if strings.ContainsAny(c.host, " \r\n\t") {
		return plugin.Usagef("flag -H/--%s: %q is not a host name or address", flagHost, c.host)
	}
	if err := headerSafe(c.user); err != nil {
		return plugin.Usagef("flag -u/--%s: %v", flagUser, err)
	}
	if (c.ca != "" || c.insecure) && !c.tls {
		f := flagCA
		if c.insecure {
			f = flagInsecure
		}
		return plugin.Usagef("flag --%s needs --%s", f, flagTLS)
	}
	if c.ca != "" && c.insecure {
		return plugin.Usagef("flags --%s and --%s exclude each other", flagCA, flagInsecure)
	}
	if c.minUptime != "" {
		d, err := parseDuration(c.minUptime)
		if err != nil {
			return plugin.Usagef("flag --%s: %v", flagMinUptime, err)
		}
		c.minUp = d
	}
	return nil
}

// parseDuration reads "10m", "1h30m" or a number of seconds.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e9 {
			return 0, fmt.Errorf("%q is not a duration from 0 (e.g. 10m, 1h or 600)", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration from 0 (e.g. 10m, 1h or 600)", s)
	}
	return d, nil
}

// headerSafe refuses what would break an AMI header line: a line break
// would let the value inject headers of its own.
func headerSafe(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Errorf("holds a line break or NUL, which AMI cannot carry")
	}
	return nil
}

// target is where and how to log in, resolved from flags, environment and
// cluster.toml.
type target struct {
	addr string
	tls  *tls.Config
	user string
	// secret is never printed; errors about it name its source only.
	secret string
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	t, r := c.resolve(env)
	if r != nil {
		return *r
	}
	// Keep back part of -t, so that a silent or stalled server is reported
	// by the check itself (the step, what arrived, what was measured)
	// rather than by the plugin's backstop.
	bctx, cancel := context.WithTimeout(ctx, budget(ctx))
	defer cancel()
	obs := Probe(bctx, Options{Addr: t.addr, TLS: t.tls, Debugf: env.Debugf, Step: env.Step},
		Login{User: t.user, Secret: t.secret, MD5: c.md5})
	return Evaluate(obs, Policy{
		Ping:         c.ping,
		Calls:        c.calls,
		MinUptime:    c.minUp,
		TimeoutState: env.TimeoutSt,
		Verbose:      env.Verbose,
	})
}

// budget is how long the session may take: most of what is left before
// -t, at most a second kept back.
func budget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return plugin.DefaultTimeout
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}

// resolve finds host, port, user and secret: flags first, then the
// environment (secret), then cluster.toml's [ami]. r is the result to
// return instead when that fails.
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
	var a config.AMI
	if cfg != nil {
		a = cfg.AMI
	}

	host := firstOf(c.host, a.Host, DefaultHost)
	port := c.port
	if port == 0 {
		port = a.Port
		if c.tls && (port == 0 || port == DefaultPort) {
			port = DefaultTLSPort
		}
		if port == 0 {
			port = DefaultPort
		}
	}
	t := target{addr: net.JoinHostPort(host, strconv.Itoa(port)), user: firstOf(c.user, a.User)}
	if t.user == "" {
		return fail(plugin.UsageResult(fmt.Errorf("no AMI user: give -u/--%s or set [ami] user in %s", flagUser, path)))
	}
	if err := headerSafe(t.user); err != nil {
		return fail(plugin.UsageResult(fmt.Errorf("%s: ami.user %v", path, err)))
	}

	var src string
	switch {
	case c.secretFile != "":
		env.Step("reading the secret file")
		src = "--" + flagSecretFile + " " + c.secretFile
		t.secret, err = config.ReadSecretFile(c.secretFile)
		if err != nil {
			return fail(plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0)))
		}
	case os.Getenv(SecretEnv) != "":
		src = "$" + SecretEnv
		t.secret = os.Getenv(SecretEnv)
	case a.Secret.IsSet():
		src = "ami.secret in " + path
		t.secret, err = a.Secret.Value()
		if err != nil {
			return fail(plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0)))
		}
	}
	if t.secret == "" {
		if src != "" {
			return fail(plugin.UsageResult(fmt.Errorf("the AMI secret from %s is empty", src)))
		}
		return fail(plugin.UsageResult(fmt.Errorf("no AMI secret: set $%s, give --%s or set [ami] secret in %s", SecretEnv, flagSecretFile, path)))
	}
	if headerSafe(t.secret) != nil {
		return fail(plugin.UsageResult(fmt.Errorf("the AMI secret from %s holds a line break or NUL, which AMI cannot carry", src)))
	}
	env.Debugf(1, "AMI %s as %s, secret from %s", t.addr, plugin.Clean(t.user, 64), src)

	if c.tls {
		t.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure}
		if c.ca != "" {
			env.Step("reading the CA file %s", c.ca)
			pem, err := os.ReadFile(c.ca)
			if err != nil {
				return fail(plugin.Resultf(plugin.Unknown, "reading --%s: %s", flagCA, plugin.Clean(err.Error(), 0)))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fail(plugin.UsageResult(fmt.Errorf("flag --%s: %s holds no PEM certificate", flagCA, c.ca)))
			}
			t.tls.RootCAs = pool
		}
	}
	return t, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
