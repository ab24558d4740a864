package sip

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Transports.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Default ports (RFC 3261 section 19.1.2) and From user.
const (
	DefaultPort     = 5060
	DefaultTLSPort  = 5061
	DefaultFromUser = "pbxha"
)

// Input is what the user asked for, after cluster.toml's [sip] has filled
// in what the flags left out. Zero values mean "not given".
type Input struct {
	Host      string // -H: where to send (default: the URI's host)
	Port      int    // -p
	URI       string // -u: the exact Request-URI
	Transport string // --transport
	FromUser  string
	ToUser    string
}

// Target is the request to send: its Request-URI, where it goes and the
// users of From and To.
type Target struct {
	URI       sipmsg.Uri
	Host      string // IP address (no brackets) or host name
	Port      int
	Transport string // UDP, TCP or TLS
	FromUser  string
	ToUser    string
}

// Dest is where the request goes, as output names it: "192.0.2.10:5060/udp".
func (t Target) Dest() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) + "/" + t.Transport
}

// ServerName is the name a TLS server must prove: the Request-URI's host,
// the domain we mean to reach (RFC 5922 section 7), wherever -H sends.
func (t Target) ServerName() string {
	h, _ := cleanHost(t.URI.Host)
	return h
}

// RequestURI is the Request-URI as it goes on the wire.
func (t Target) RequestURI() string { return t.URI.String() }

// user = 1*( unreserved / escaped / user-unreserved ), RFC 3261 section 25.1.
var userRE = regexp.MustCompile(`^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$`)

// MaxUser bounds a From/To user; a PBX extension or trunk name is short.
const MaxUser = 64

// Resolve checks the input and builds the target. Its errors name the
// flag at fault.
func Resolve(in Input) (Target, error) {
	var t Target
	tp := strings.ToLower(in.Transport)
	switch tp {
	case "", UDP, TCP, TLS:
	default:
		return t, fmt.Errorf("flag --transport: %q is not udp, tcp or tls", in.Transport)
	}
	if in.Port < 0 || in.Port > 65535 {
		return t, fmt.Errorf("flag -p/--port: %d is not a port from 1 to 65535", in.Port)
	}
	for _, u := range []struct{ flag, v string }{{"--from-user", in.FromUser}, {"--to-user", in.ToUser}} {
		if u.v != "" && (len(u.v) > MaxUser || !userRE.MatchString(u.v)) {
			return t, fmt.Errorf("flag %s: %q is not a SIP user part (letters, digits, -_.!~*'()&=+$,;?/ and %%HH, at most %d)", u.flag, u.v, MaxUser)
		}
	}
	host := in.Host
	if host != "" {
		h, ok := cleanHost(host)
		if !ok {
			return t, fmt.Errorf("flag -H/--host: %q is neither an IP address nor a host name", host)
		}
		host = h
	}
	t.FromUser = in.FromUser
	if t.FromUser == "" {
		t.FromUser = DefaultFromUser
	}

	if in.URI != "" {
		u, err := parseURI(in.URI)
		if err != nil {
			return t, fmt.Errorf("flag -u/--uri: %v", err)
		}
		if p, ok := u.UriParams.Get("transport"); ok {
			p = strings.ToLower(p)
			switch {
			case p != UDP && p != TCP && p != TLS:
				return t, fmt.Errorf("flag -u/--uri: transport=%s is not udp, tcp or tls", p)
			case tp != "" && tp != p:
				return t, fmt.Errorf("flag --transport: %s contradicts the URI's transport=%s", tp, p)
			}
			tp = p
		}
		if u.Scheme == "sips" {
			if tp != "" && tp != TLS {
				return t, fmt.Errorf("flag --transport: a sips: URI needs tls, not %s", tp)
			}
			tp = TLS
		}
		t.URI = u
		if host == "" {
			host, _ = cleanHost(u.Host)
		}
		t.Port = in.Port
		if t.Port == 0 {
			t.Port = u.Port
		}
		t.ToUser = u.User
	} else {
		if host == "" {
			return t, fmt.Errorf("no target: give -H/--host or -u/--uri, or set [sip] host in cluster.toml")
		}
		t.Port = in.Port
	}
	if tp == "" {
		tp = UDP
	}
	t.Transport = tp
	if t.Port == 0 {
		t.Port = DefaultPort
		if tp == TLS {
			t.Port = DefaultTLSPort
		}
	}
	t.Host = host
	if in.ToUser != "" {
		t.ToUser = in.ToUser
	}
	if in.URI == "" {
		t.URI = sipmsg.Uri{Scheme: "sip", User: t.ToUser, Host: uriHost(host), Port: t.Port}
		if tp != UDP {
			// What a phone sends over a stream transport (RFC 3261
			// section 19.1.1); proxies route by it.
			t.URI.UriParams = sipmsg.HeaderParams{{K: "transport", V: tp}}
		}
	}
	return t, nil
}

// parseURI reads -u. It refuses what has no place in a probe's
// Request-URI: another scheme, a password (it would travel in clear),
// headers (RFC 3261 section 19.1.5 forbids them there), and any space or
// control character (it would end the request line).
func parseURI(s string) (sipmsg.Uri, error) {
	var u sipmsg.Uri
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			return u, fmt.Errorf("%q holds a space, a control or a non-ASCII character", s)
		}
	}
	if len(s) > 512 {
		return u, fmt.Errorf("URI is longer than 512 characters")
	}
	if err := sipmsg.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("%q is not a SIP URI: %v", s, err)
	}
	switch {
	case u.Scheme != "sip" && u.Scheme != "sips":
		return u, fmt.Errorf("%q: scheme %q is not sip or sips", s, u.Scheme)
	case u.Password != "":
		return u, fmt.Errorf("%q holds a password; it would be sent in clear", s)
	case u.Headers.Length() > 0 || strings.Contains(s, "?"):
		return u, fmt.Errorf("%q has headers (?...), which a Request-URI must not carry", s)
	case u.Port < 0 || u.Port > 65535:
		return u, fmt.Errorf("%q: port %d is not from 1 to 65535", s, u.Port)
	case u.User != "" && (len(u.User) > MaxUser || !userRE.MatchString(u.User)):
		return u, fmt.Errorf("%q: user %q is not a SIP user part", s, u.User)
	case u.HierarhicalSlashes:
		return u, fmt.Errorf("%q: a SIP URI has no // after the scheme", s)
	}
	if _, ok := cleanHost(u.Host); !ok {
		return u, fmt.Errorf("%q: host %q is neither an IP address nor a host name", s, u.Host)
	}
	for _, kv := range u.UriParams {
		if kv.K == "" || strings.ContainsAny(kv.K+kv.V, ";?&=<>\"") {
			return u, fmt.Errorf("%q: malformed URI parameter %q", s, kv.K+"="+kv.V)
		}
	}
	return u, nil
}

// cleanHost checks a host and returns it without IPv6 brackets.
func cleanHost(h string) (string, bool) {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", false
		}
		return a.Unmap().String(), true
	}
	return h, validHostname(h)
}

// uriHost brackets an IPv6 address for a URI.
func uriHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
		return "[" + h + "]"
	}
	return h
}

// validHostname is RFC 1123 labels, each 1-63 letters, digits or
// hyphens, not starting or ending with a hyphen; a trailing dot is fine.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	// All digits and dots is a malformed IPv4 address, not a name.
	return strings.Trim(h, "0123456789.") != ""
}
