package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"pbxha/lib/plugin"
)

// ProbeOptions is one probe.
type ProbeOptions struct {
	Target Target
	// Source is the local address to send from; its port may be 0. Zero:
	// the address the route to the target selects.
	Source    netip.AddrPort
	TLS       *tls.Config // for TLS; ServerName set
	UserAgent string
	// Wait bounds the whole probe, name lookup and connection included.
	Wait time.Duration
	// Step and Debugf are lib/plugin's Env.Step and Env.Debugf (nil: none).
	Step   func(format string, args ...any)
	Debugf func(level int, format string, args ...any)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

// init silences sipgo's package-wide logger, which parts of its transport
// code use directly and which defaults to slog.Default(): stderr, which
// Icinga reads as the check's output. It must happen before any UA exists
// and before any goroutine of sipgo reads it; at import nothing runs yet.
func init() { sipmsg.SetDefaultLogger(discard) }

// Probe sends one OPTIONS request and waits for its final response, for at
// most o.Wait. Over UDP sipgo retransmits it per RFC 3261 (Timer E, T1
// doubling up to T2) until an answer, an ICMP error or the end of the wait.
func Probe(ctx context.Context, o ProbeOptions) (out Outcome) {
	step := o.Step
	if step == nil {
		step = func(string, ...any) {}
	}
	debugf := o.Debugf
	if debugf == nil {
		debugf = func(int, string, ...any) {}
	}
	t := o.Target
	out.Dest = t.Dest()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	timedOut := func() Outcome {
		out.TimedOut = true
		out.Waited = time.Since(start)
		return out
	}
	// fail reports err, sipgo's or the OS's, in an admin's words; a
	// timeout is silence.
	fail := func(err error) Outcome {
		if ctx.Err() != nil || isTimeout(err) {
			return timedOut()
		}
		out.Err = describe(err, t.Transport)
		out.Waited = time.Since(start)
		return out
	}

	step("resolving %s", t.Host)
	ip, err := resolve(ctx, t.Host)
	if err != nil {
		return fail(err)
	}
	dest := netip.AddrPortFrom(ip, uint16(t.Port))
	local := o.Source.Addr()
	if !local.IsValid() {
		if local, err = routeSource(dest); err != nil {
			return fail(err)
		}
	}
	debugf(2, "sending to %s/%s from %s", dest, t.Transport, local)

	logger := discard
	if o.Debugf != nil {
		logger = slog.New(slog.NewTextHandler(debugWriter(o.Debugf), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	uaOpts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(o.UserAgent),
		sipgo.WithUserAgentHostname(local.String()),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(logger)),
		// A TCP or TLS peer that closes the connection will not answer:
		// say so now rather than wait out -t.
		sipgo.WithUserAgentTransactionLayerOptions(sipmsg.WithTransactionLayerLogger(logger),
			sipmsg.WithTransactionLayerTerminateOnConnClose()),
	}
	if t.Transport == TLS {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(o.TLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return fail(err)
	}
	defer ua.Close()

	// sipgo puts the connection's local address into Via (sent-by) only
	// when the client names one; otherwise a UDP socket bound to the
	// wildcard address would advertise 0.0.0.0.
	clientOpts := []sipgo.ClientOption{sipgo.WithClientLogger(logger), sipgo.WithClientNAT()}
	var udp *udpConn
	if t.Transport == UDP {
		if udp, err = listenUDP(ctx, netip.AddrPortFrom(local, o.Source.Port())); err != nil {
			return fail(err)
		}
		defer udp.Close()
		go ua.TransportLayer().ServeUDP(udp)
		// The request must find our socket in sipgo's pool, or sipgo would
		// open a second one on the same address.
		select {
		case <-udp.ready:
		case <-ctx.Done():
			return timedOut()
		}
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(udp.LocalAddr().String()))
	} else if o.Source.Addr().IsValid() {
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(o.Source.String()))
	}
	client, err := sipgo.NewClient(ua, clientOpts...)
	if err != nil {
		return fail(err)
	}

	req := newRequest(t, dest, local, o.UserAgent)
	if t.Transport == UDP {
		step("waiting for a SIP response from %s", out.Dest)
	} else {
		step("connecting to %s", out.Dest)
	}
	sendStart := time.Now()
	tx, err := client.TransactionRequest(ctx, req)
	if udp != nil {
		out.Sent = udp.Sent()
	}
	if err != nil {
		if t.Transport != UDP && (ctx.Err() != nil || isTimeout(err)) {
			out.NotConnected = true
			return timedOut()
		}
		return fail(err)
	}
	defer tx.Terminate()
	step("waiting for a SIP response from %s", out.Dest)
	for _, l := range strings.Split(strings.TrimRight(req.String(), "\r\n"), "\r\n") {
		debugf(2, "> %s", l)
	}
	var icmp chan error
	if udp != nil {
		icmp = udp.ICMP
	}
	for {
		select {
		case res := <-tx.Responses():
			for _, l := range strings.Split(strings.TrimRight(res.String(), "\r\n"), "\r\n") {
				debugf(2, "< %s", plugin.Clean(l, 0))
			}
			if res.IsProvisional() {
				out.Provisional = append(out.Provisional, res.StatusCode)
				continue
			}
			out.RTT = time.Since(sendStart)
			out.Code, out.Reason = res.StatusCode, res.Reason
			out.Waited = time.Since(start)
			if udp != nil {
				out.Sent = udp.Sent()
			}
			return out
		case <-tx.Done():
			if udp != nil {
				out.Sent = udp.Sent()
			}
			err := tx.Err()
			if err == nil {
				err = errors.New("transaction ended without a response")
			}
			return fail(err)
		case err := <-icmp:
			out.Sent = udp.Sent()
			return fail(err)
		case <-ctx.Done():
			if udp != nil {
				out.Sent = udp.Sent()
			}
			return timedOut()
		}
	}
}

// newRequest builds the OPTIONS request; sipgo adds Via, Call-ID, CSeq,
// Max-Forwards and Content-Length.
func newRequest(t Target, dest netip.AddrPort, local netip.Addr, userAgent string) *sipmsg.Request {
	req := sipmsg.NewRequest(sipmsg.OPTIONS, *t.URI.Clone())
	req.SetTransport(strings.ToUpper(t.Transport))
	req.SetDestination(dest.String())
	from := &sipmsg.FromHeader{
		Address: sipmsg.Uri{Scheme: "sip", User: t.FromUser, Host: uriHost(local.String())},
		Params:  sipmsg.NewParams(),
	}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	scheme := t.URI.Scheme
	if scheme == "" {
		scheme = "sip"
	}
	to := &sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: scheme, User: t.ToUser, Host: t.URI.Host}}
	req.AppendHeader(from)
	req.AppendHeader(to)
	if userAgent != "" {
		req.AppendHeader(sipmsg.NewHeader("User-Agent", userAgent))
	}
	// What a keepalive wants to know is whether the stack answers, not
	// its capabilities; asking for SDP is what phones do (RFC 3261 11.1).
	req.AppendHeader(sipmsg.NewHeader("Accept", "application/sdp"))
	return req
}

// resolve turns the host into one address under ctx, IPv4 first as sipgo
// would pick it.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) {
			err = errors.New(de.Err)
		}
		return netip.Addr{}, ownErrorf("resolving %s: %v", host, err)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, ownErrorf("resolving %s: no address", host)
	}
	return ips[0], nil
}

// routeSource is the address the kernel would send from to reach dest: a
// UDP connect sends nothing, it only picks a route.
func routeSource(dest netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dest))
	if err != nil {
		return netip.Addr{}, ownErrorf("no route to %s: %v", dest.Addr(), rootCause(err))
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// listenUDP opens the probe's UDP socket on local (port 0: any).
func listenUDP(ctx context.Context, local netip.AddrPort) (*udpConn, error) {
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, local.String())
	if err != nil {
		return nil, ownErrorf("binding to source %s: %v", local, rootCause(err))
	}
	if err := recvErr(pc, local.Addr().Is6()); err != nil {
		pc.Close()
		return nil, ownErrorf("enabling ICMP error reports on the UDP socket: %v", err)
	}
	return newUDPConn(pc), nil
}

// describe turns sipgo's nested errors ("client transcation failed to
// request connection: dial TCP error: dial tcp ...: connect: connection
// refused") into what an admin needs to read.
func describe(err error, transport string) error {
	var own ownError
	if errors.As(err, &own) {
		return err
	}
	var errno syscall.Errno
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &cve):
		return fmt.Errorf("TLS: server certificate not accepted: %v", cve.Err)
	case errors.As(err, &rhe):
		return errors.New("TLS handshake failed: the server does not speak TLS")
	case strings.Contains(err.Error(), "TLS handshake error"):
		return fmt.Errorf("TLS handshake failed: %v", rootCause(err))
	case errors.As(err, &errno):
		switch {
		case errno == syscall.ECONNREFUSED && transport == UDP:
			return errors.New("ICMP port unreachable: nothing listens on that port")
		case errno == syscall.ECONNREFUSED:
			return errors.New("connection refused: nothing listens on that port")
		case transport == UDP:
			return fmt.Errorf("ICMP error: %v", errno)
		}
		return fmt.Errorf("connecting failed: %v", errno)
	case errors.Is(err, io.EOF) || errors.Is(err, sipmsg.ErrTransactionTransport):
		return fmt.Errorf("connection lost before a response: %v", rootCause(err))
	}
	return fmt.Errorf("sending OPTIONS failed: %v", rootCause(err))
}

// ownError is an error worded here already.
type ownError struct{ error }

func ownErrorf(format string, args ...any) error { return ownError{fmt.Errorf(format, args...)} }

// rootCause is the innermost error of a chain, which says what the OS or
// the peer did without the wrappers' prose.
func rootCause(err error) error {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[0]
			}
		}
		if next == nil {
			return err
		}
		err = next
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sipmsg.ErrTransactionTimeout) ||
		errors.As(err, &ne) && ne.Timeout()
}

// debugWriter feeds sipgo's log lines (text handler output) to -vvv.
type debugWriter func(level int, format string, args ...any)

func (w debugWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w(3, "sipgo: %s", plugin.Clean(l, 0))
	}
	return len(p), nil
}
