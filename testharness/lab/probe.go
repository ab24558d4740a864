package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/ntp"

	"pbxha/testharness/netnsdial"
)

// probe checks that a service answers on each of its ports, from inside
// its own host's namespace.
func (l *Lab) probe(ctx context.Context, s service) error {
	for _, p := range s.Ports {
		var err error
		switch {
		case s.Name == SvcKamailio && p.Proto == "udp":
			if l.sipCode(s.Host) == 0 {
				continue // told to stay silent; the TCP port shows it is up
			}
			_, err = SIPOptions(ctx, s.Host, p.Addr)
		case s.Name == SvcChronyd:
			_, err = NTPQuery(ctx, s.Host, p.Addr)
		case s.Name == SvcSSHD:
			err = probeBanner(ctx, s.Host, p.Addr, "SSH-")
		case s.Name == SvcSMTP:
			err = probeBanner(ctx, s.Host, p.Addr, "220")
		case s.Name == SvcRsyncd:
			err = probeBanner(ctx, s.Host, p.Addr, "@RSYNCD:")
		default:
			err = probeTCP(ctx, s.Host, p.Addr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func probeTCP(ctx context.Context, host, addr string) error {
	c, err := netnsdial.DialContext(ctx, Netns(host), "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// probeBanner connects and reads the first line, which must start with
// prefix.
func probeBanner(ctx context.Context, host, addr, prefix string) error {
	c, err := netnsdial.DialContext(ctx, Netns(host), "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(dl)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if !strings.HasPrefix(line, prefix) {
		return fmt.Errorf("greeting %q does not start with %q", strings.TrimSpace(line), prefix)
	}
	return nil
}

// SIPOptions sends one SIP OPTIONS request over UDP from inside host's
// namespace to addr (ip:port) and returns the response's status code. It is
// a bare-bones client on purpose: it has to run on a socket made inside a
// namespace, and the lab only needs the status line.
func SIPOptions(ctx context.Context, host, addr string) (int, error) {
	c, err := netnsdial.DialContext(ctx, Netns(host), "udp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(dl)
	local := c.LocalAddr().(*net.UDPAddr)
	target, _, _ := net.SplitHostPort(addr)
	id := rand.Text()[:16]
	req := fmt.Sprintf("OPTIONS sip:%[1]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[2]s;branch=z9hG4bK%[3]s;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:pbxlab@%[4]s>;tag=%[3]s\r\n"+
		"To: <sip:%[1]s>\r\n"+
		"Call-ID: %[3]s@pbxlab\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Accept: application/sdp\r\n"+
		"Content-Length: 0\r\n\r\n", target, local.String(), id, local.IP.String())
	// Resend as a UDP client would (RFC 3261 timer E), within the deadline.
	buf := make([]byte, 4096)
	for wait := 250 * time.Millisecond; ; wait *= 2 {
		if _, err := c.Write([]byte(req)); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(minTime(dl, time.Now().Add(wait)))
		n, err := c.Read(buf)
		if err == nil {
			return parseStatusLine(string(buf[:n]))
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !time.Now().Before(dl) {
			return 0, fmt.Errorf("no SIP response from %s: %w", addr, err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func parseStatusLine(msg string) (int, error) {
	line, _, _ := strings.Cut(msg, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0, fmt.Errorf("not a SIP response: %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("not a SIP response: %q", line)
	}
	return code, nil
}

// NTPQuery asks the NTP server at addr from inside host's namespace. The
// response is not validated (r.Validate does that).
func NTPQuery(ctx context.Context, host, addr string) (*ntp.Response, error) {
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	r, err := ntp.QueryWithOptions(addr, ntp.QueryOptions{
		Timeout: timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			return netnsdial.DialContext(ctx, Netns(host), "udp", remote)
		},
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
