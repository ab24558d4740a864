package ntptime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"pbxha/lib/plugin"
)

// DefaultPort is NTP's port, for servers given without one.
const DefaultPort = 123

// errMalformed: the server answered, with something the NTP library could
// not take.
var errMalformed = errors.New("the NTP library could not parse it")

// Sample is one server's answer, or why there is none.
type Sample struct {
	Server string // as the user wrote it: output text and perfdata labels

	// Offset is the server's clock minus ours: positive when the local
	// clock is behind (beevik/ntp's ClockOffset, and check_ntp_time's sign).
	Offset         time.Duration
	RTT            time.Duration
	Stratum        int
	Leap           ntp.LeapIndicator
	Reference      string // reference ID as text, cleaned: it comes from the server
	RootDelay      time.Duration
	RootDispersion time.Duration
	Version        int

	// Invalid is why beevik/ntp's Validate refuses the answer for time
	// synchronisation (kiss-o'-death, stratum 16, leap alarm, stale or
	// dispersed clock); the fields above are still what the server sent.
	Invalid error
	// Err is set when no answer came; TimedOut when because time ran out,
	// after Waited.
	Err      error
	TimedOut bool
	Waited   time.Duration
}

// Server is an NTP server to ask: Name as given, Addr as host:port.
type Server struct {
	Name string
	Addr string
}

// ParseServer reads host, host:port, an IPv6 literal or [IPv6]:port; port
// is used when none is given. The error says what is wrong, for a usage
// message that names the flag or key.
func ParseServer(s string, port int) (Server, error) {
	addr, err := hostPort(s, port)
	return Server{Name: s, Addr: addr}, err
}

func hostPort(s string, port int) (string, error) {
	def := strconv.Itoa(port)
	if s == "" || strings.TrimSpace(s) != s {
		return "", fmt.Errorf("%q is not host[:port]", s)
	}
	if _, err := netip.ParseAddr(s); err == nil { // bare IPv4 or IPv6
		return net.JoinHostPort(s, def), nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if _, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return net.JoinHostPort(s[1:len(s)-1], def), nil
		}
		return "", fmt.Errorf("%q is not an IPv6 address in brackets", s)
	}
	host, p := s, def
	if strings.Contains(s, ":") {
		var err error
		if host, p, err = net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("%q is not host[:port]", s)
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
		}
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		return "", fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return net.JoinHostPort(host, p), nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// dialFunc opens the UDP "connection" to a server; tests and fuzzing put a
// scripted peer behind it.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// QueryAll asks every server at once, each for at most wait (and never past
// ctx's deadline), and returns the samples in the servers' order.
func QueryAll(ctx context.Context, servers []Server, wait time.Duration) []Sample {
	out := make([]Sample, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = query(ctx, s, wait, nil)
		}()
	}
	wg.Wait()
	return out
}

func query(ctx context.Context, s Server, wait time.Duration, dial dialFunc) (sample Sample) {
	// beevik/ntp v1.6.0 panics on some replies (a precision of -128 makes
	// toInterval shift by a negative amount). In this goroutine a panic
	// would kill the process rather than reach lib/plugin's recover: a
	// malformed reply is that server's failure, not the check's.
	defer func() {
		if p := recover(); p != nil {
			sample = Sample{Server: s.Name, Err: fmt.Errorf("%w (%v)", errMalformed, p)}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	addr, err := resolve(ctx, s.Addr)
	if err != nil {
		return sampleOf(s.Name, time.Since(start), nil, err)
	}
	// beevik/ntp bounds the exchange by Timeout alone, not by a context:
	// what the name lookup used up is taken off.
	left := wait
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	if left <= 0 {
		return sampleOf(s.Name, time.Since(start), nil, context.DeadlineExceeded)
	}
	opt := ntp.QueryOptions{Timeout: left}
	if dial != nil {
		opt.Dialer = func(_, remote string) (net.Conn, error) { return dial(ctx, remote) }
	}
	resp, err := ntp.QueryWithOptions(addr, opt)
	return sampleOf(s.Name, time.Since(start), resp, err)
}

// resolve turns host:port into ip:port under ctx. beevik/ntp's own dialer
// resolves names with no deadline at all; a resolver that hangs would then
// hold the check until -t kills it, with no per-server result.
func resolve(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return hostport, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolving %s: no address", host)
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}

// sampleOf turns beevik/ntp's answer into a Sample.
func sampleOf(name string, waited time.Duration, resp *ntp.Response, err error) Sample {
	s := Sample{Server: name, Waited: waited}
	if err != nil {
		s.Err = err
		var ne net.Error
		s.TimedOut = errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		return s
	}
	s.Offset = resp.ClockOffset
	s.RTT = resp.RTT
	s.Stratum = int(resp.Stratum)
	s.Leap = resp.Leap
	s.Reference = plugin.Clean(resp.ReferenceString(), 40)
	s.RootDelay = resp.RootDelay
	s.RootDispersion = resp.RootDispersion
	s.Version = resp.Version
	s.Invalid = resp.Validate()
	return s
}
