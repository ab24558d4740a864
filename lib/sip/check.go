package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagHost      = "host"
	flagPort      = "port"
	flagURI       = "uri"
	flagTransport = "transport"
	flagSource    = "source"
	flagFromUser  = "from-user"
	flagToUser    = "to-user"
	flagUserAgent = "user-agent"
	flagAccept    = "accept"
	flagCA        = "ca"
	flagInsecure  = "insecure"
	flagSNI       = "sni"
)

// checkConfig is check_pbx_sip's flags.
type checkConfig struct {
	in        Input
	source    string
	userAgent string
	accept    Codes
	rtt       threshold.Pair
	ca        string
	insecure  bool
	sni       string

	src    netip.AddrPort // from source, by validate
	roots  *x509.CertPool // from ca, by validate
	target *Target        // by validate when the flags name the target
}

// Spec is check_pbx_sip.
func Spec() plugin.Spec {
	c := &checkConfig{accept: append(Codes(nil), DefaultAccept...)}
	return plugin.Spec{
		Name:   "PBX_SIP",
		Binary: "check_pbx_sip",
		Description: "Sends one SIP OPTIONS request (UDP, TCP or TLS) and waits for its final response: a code\n" +
			"in --accept is OK, judged further by the round trip against -w/-c in seconds (for TCP and\n" +
			"TLS it includes setting up the connection); any other code, a refused or unreachable port\n" +
			"(ICMP) and a TLS failure are CRITICAL, no final response before -t gets -t's state. Over UDP\n" +
			"the request is retransmitted per RFC 3261 (0.5 s doubling up to 4 s) until -t. Without -H and\n" +
			"-u the target is the [sip] section of cluster.toml (host, port, transport; flags given win).\n" +
			"Perfdata: rtt (s), code.",
		Examples: []string{
			"check_pbx_sip                                   # [sip] of cluster.toml, on the master only",
			"check_pbx_sip -H 192.0.2.10 --role any -w 0.2 -c 1",
			"check_pbx_sip -H pbx.example.net --transport tls --ca /etc/pbxha/sip-ca.pem",
			"check_pbx_sip -u sip:100@192.0.2.10 --accept 200,404 --source 192.0.2.1",
		},
		DefaultRole: plugin.RoleMaster,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringVarP(&c.in.Host, flagHost, "H", "", "SIP server to send to: IP address or host name (default: the URI's host, else [sip] host)")
	fs.IntVarP(&c.in.Port, flagPort, "p", 0, "port (default: the URI's, else 5060, 5061 for tls; [sip] port without -H/-u)")
	fs.StringVarP(&c.in.URI, flagURI, "u", "", "exact Request-URI, e.g. sip:100@pbx.example.net;transport=tcp (default: sip:[to-user@]host:port)")
	fs.StringVar(&c.in.Transport, flagTransport, "", "udp, tcp or tls (default: the URI's transport, else udp; [sip] transport without -H/-u)")
	fs.StringVar(&c.source, flagSource, "", "local address to send from, IP[:port] or [IPv6]:port (default: the one the route selects)")
	fs.StringVar(&c.in.FromUser, flagFromUser, DefaultFromUser, "user part of From")
	fs.StringVar(&c.in.ToUser, flagToUser, "", "user part of To, and of the Request-URI when -u is not given")
	fs.StringVar(&c.userAgent, flagUserAgent, "pbxha-check_pbx_sip/"+plugin.Version, "User-Agent header")
	fs.Var(&c.accept, flagAccept, "final response codes that are OK, e.g. 200,401,404")
	fs.VarP(&c.rtt.Warn, "warning", "w", "range for the round trip in seconds: WARNING outside it (default: none)")
	fs.VarP(&c.rtt.Crit, "critical", "c", "range for the round trip in seconds: CRITICAL outside it (default: none)")
	fs.StringVar(&c.ca, flagCA, "", "PEM file of the CA(s) that sign the server's certificate (tls; default: the system's)")
	fs.BoolVar(&c.insecure, flagInsecure, false, "do not verify the server's certificate (tls)")
	fs.StringVar(&c.sni, flagSNI, "", "server name to send (SNI) and to verify the certificate against (tls; default: the Request-URI's host)")
}

func (c *checkConfig) validate(env *plugin.Env) error {
	if env.Flags.Changed(flagPort) && (c.in.Port < 1 || c.in.Port > 65535) {
		return plugin.Usagef("flag -p/--%s: %d is not a port from 1 to 65535", flagPort, c.in.Port)
	}
	if c.source != "" {
		if ap, err := netip.ParseAddrPort(c.source); err == nil {
			c.src = ap
		} else if a, err := netip.ParseAddr(c.source); err == nil && a.Zone() == "" {
			c.src = netip.AddrPortFrom(a, 0)
		} else {
			return plugin.Usagef("flag --%s: %q is not IP[:port]", flagSource, c.source)
		}
		c.src = netip.AddrPortFrom(c.src.Addr().Unmap(), c.src.Port())
	}
	if len(c.userAgent) > 200 {
		return plugin.Usagef("flag --%s: longer than 200 characters", flagUserAgent)
	}
	for _, r := range c.userAgent {
		if unicode.IsControl(r) {
			return plugin.Usagef("flag --%s: %q holds a control character", flagUserAgent, c.userAgent)
		}
	}
	if c.insecure && c.ca != "" {
		return plugin.Usagef("flag --%s: --%s skips the verification that --%s is for; give one", flagInsecure, flagInsecure, flagCA)
	}
	if c.sni != "" && !validHostname(c.sni) {
		if _, err := netip.ParseAddr(c.sni); err != nil {
			return plugin.Usagef("flag --%s: %q is not a host name", flagSNI, c.sni)
		}
	}
	if c.ca != "" {
		b, err := os.ReadFile(c.ca)
		if err != nil {
			return plugin.Usagef("flag --%s: %v", flagCA, err)
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(b) {
			return plugin.Usagef("flag --%s: %s holds no PEM certificate", flagCA, c.ca)
		}
	}
	if c.in.Host != "" || c.in.URI != "" {
		t, err := c.resolve(c.in)
		if err != nil {
			return plugin.UsageError{Err: err}
		}
		c.target = &t
	}
	return nil
}

// resolve builds the target and checks the TLS flags against its transport.
func (c *checkConfig) resolve(in Input) (Target, error) {
	t, err := Resolve(in)
	if err != nil {
		return t, err
	}
	if t.Transport != TLS {
		for _, f := range []struct {
			name string
			set  bool
		}{{flagCA, c.ca != ""}, {flagInsecure, c.insecure}, {flagSNI, c.sni != ""}} {
			if f.set {
				return t, fmt.Errorf("flag --%s: applies to transport tls, not %s", f.name, t.Transport)
			}
		}
	}
	if c.src.IsValid() {
		if dst, err := netip.ParseAddr(t.Host); err == nil && dst.Is4() != c.src.Addr().Is4() {
			return t, fmt.Errorf("flag --%s: %s cannot reach %s (IPv4 and IPv6)", flagSource, c.src.Addr(), dst)
		}
	}
	return t, nil
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	if c.target == nil {
		t, r := c.configTarget(env)
		if r != nil {
			return *r
		}
		c.target = &t
	}
	t := *c.target
	var tlsConf *tls.Config
	if t.Transport == TLS {
		name := c.sni
		if name == "" {
			name = t.ServerName()
		}
		tlsConf = &tls.Config{
			ServerName:         name,
			RootCAs:            c.roots,
			InsecureSkipVerify: c.insecure,
			MinVersion:         tls.VersionTLS12,
		}
	}
	out := Probe(ctx, ProbeOptions{
		Target:    t,
		Source:    c.src,
		TLS:       tlsConf,
		UserAgent: c.userAgent,
		Wait:      probeWait(ctx),
		Step:      env.Step,
		Debugf:    env.Debugf,
	})
	env.Debugf(1, "OPTIONS %s to %s", t.RequestURI(), out.Dest)
	return Evaluate(out, Policy{Accept: c.accept, RTT: c.rtt, TimeoutState: env.TimeoutSt})
}

// configTarget fills what the flags left out from [sip] of cluster.toml;
// r is the result to return instead when that fails.
func (c *checkConfig) configTarget(env *plugin.Env) (Target, *plugin.Result) {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		r := plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
		return Target{}, &r
	}
	in := c.in
	if cfg != nil {
		bad := func(key, format string, args ...any) (Target, *plugin.Result) {
			r := plugin.UsageResult(fmt.Errorf("%s: sip.%s: %s", cfg.Path(), key, fmt.Sprintf(format, args...)))
			return Target{}, &r
		}
		if h := cfg.SIP.Host; h != "" {
			if _, ok := cleanHost(h); !ok {
				return bad("host", "%q is neither an IP address nor a host name", h)
			}
		}
		switch strings.ToLower(cfg.SIP.Transport) {
		case "", UDP, TCP, TLS:
		default:
			return bad("transport", "%q is not udp, tcp or tls", cfg.SIP.Transport)
		}
		if p := cfg.SIP.Port; p < 1 || p > 65535 {
			return bad("port", "%d is not a port from 1 to 65535", p)
		}
		in.Host = cfg.SIP.Host
		if !env.Flags.Changed(flagPort) {
			in.Port = cfg.SIP.Port
		}
		if in.Transport == "" {
			in.Transport = cfg.SIP.Transport
		}
	}
	if in.Host == "" {
		r := plugin.UsageResult(fmt.Errorf("no SIP server: give -H/--%s or -u/--%s, or set [sip] host in %s", flagHost, flagURI, path))
		return Target{}, &r
	}
	t, err := c.resolve(in)
	if err != nil {
		r := plugin.UsageResult(err)
		return Target{}, &r
	}
	return t, nil
}

// probeWait is how long the probe may take: what is left before -t, less
// a margin to report the silence ourselves ("no SIP response after 9.5s")
// before lib/plugin's deadline does it with less detail.
func probeWait(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return plugin.DefaultTimeout
	}
	left := time.Until(dl)
	return left - min(left/10, 500*time.Millisecond)
}
