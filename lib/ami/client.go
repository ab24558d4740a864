package ami

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/staskobzar/goami2"

	"pbxha/lib/plugin"
)

// StepError is a failure at one step of the session: the step ("waiting
// for the greeting from 127.0.0.1:5038") and why.
type StepError struct {
	Step    string
	Err     error
	Timeout bool          // the step ran out of time
	Waited  time.Duration // how long the step had run when it failed
	Partial int           // bytes of a message that began but did not end
}

func (e *StepError) Error() string {
	var why string
	switch {
	case e.Timeout && e.Partial > 0:
		why = fmt.Sprintf("stopped mid-message after %d bytes, nothing more within %s", e.Partial, round(e.Waited))
	case e.Timeout:
		why = "no answer within " + round(e.Waited)
	default:
		why = reason(e.Err)
	}
	return e.Step + ": " + why
}

func (e *StepError) Unwrap() error { return e.Err }

// LoginError: Asterisk refused the login (wrong user or secret, a denied
// address, or no such user); it closes the session after that.
type LoginError struct {
	User    string
	Message string // the Message header, raw
}

func (e *LoginError) Error() string {
	s := "login rejected for user " + plugin.Clean(e.User, 64)
	if e.Message != "" {
		s += ": " + plugin.Clean(e.Message, 0)
	}
	return s
}

// reason says in a few words why a network operation failed.
func reason(err error) string {
	var ge *GreetingError
	var le *LoginError
	var ae *ActionError
	var me *MalformedError
	var dns *net.DNSError
	switch {
	case errors.As(err, &ge), errors.As(err, &le), errors.As(err, &ae), errors.As(err, &me):
		return err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset by the server"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection mid-message"
	case errors.Is(err, io.EOF):
		return "the server closed the connection"
	case errors.As(err, &dns):
		return "cannot resolve " + plugin.Clean(dns.Name, 80) + ": " + plugin.Clean(dns.Err, 80)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return plugin.Clean(err.Error(), 0)
}

func round(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d >= time.Millisecond:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return d.String()
}

// Options configure a session.
type Options struct {
	Addr string      // host:port
	TLS  *tls.Config // nil: plain TCP
	// Dialer opens the TCP connection; nil means a net.Dialer. (Tests
	// give one that replays bytes in memory.)
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Debugf receives -v lines; nil discards them.
	Debugf func(level int, format string, args ...any)
	// Step is told what the session does before each step that can block
	// (plugin.Env.Step); nil ignores it.
	Step func(format string, args ...any)
}

// Client is one AMI session, used for one check: every call takes a
// context and puts its deadline on the connection, so no read or write
// can outlive it.
type Client struct {
	conn   net.Conn
	r      *frameReader
	o      Options
	idBase string
	seq    int
	// redact is text that must never be printed (the secret); it is cut
	// out of what the peer sends too, in case a server echoes it.
	redact []string
	// skipped counts events skipped while waiting for responses.
	skipped int
}

func (c *Client) debugf(level int, format string, args ...any) {
	if c.o.Debugf != nil {
		c.o.Debugf(level, format, args...)
	}
}

func (c *Client) step(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	if c.o.Step != nil {
		c.o.Step("%s", s)
	}
	return s
}

// Dial connects (and, with TLS, shakes hands); the connection time
// includes the handshake.
func Dial(ctx context.Context, o Options) (*Client, time.Duration, error) {
	c := &Client{o: o, idBase: randomID()}
	start := time.Now()
	step := c.step("connecting to %s", o.Addr)
	dial := o.Dialer
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, 0, c.fail(ctx, step, start, err)
	}
	if o.TLS != nil {
		step = c.step("TLS handshake with %s", o.Addr)
		tc := tls.Client(conn, o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, 0, c.fail(ctx, step, start, err)
		}
		conn = tc
	}
	c.conn = conn
	c.r = newFrameReader(conn)
	return c, time.Since(start), nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "pbxha-" + hex.EncodeToString(b)
}

// Close drops the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Skipped is how many events the session skipped while waiting for
// responses.
func (c *Client) Skipped() int { return c.skipped }

// arm puts ctx's deadline on the connection and makes ctx's cancellation
// end any read or write in progress.
func (c *Client) arm(ctx context.Context) (disarm func() bool) {
	dl, _ := ctx.Deadline() // zero: none
	_ = c.conn.SetDeadline(dl)
	return context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
}

// fail builds the StepError for err, noting whether time ran out and how
// much of an unfinished message had arrived.
func (c *Client) fail(ctx context.Context, step string, start time.Time, err error) error {
	e := &StepError{Step: step, Err: err, Waited: time.Since(start)}
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		e.Timeout = true
	}
	if c.r != nil {
		e.Partial = c.r.pending
	}
	return e
}

// Greeting reads the greeting and returns the AMI version it announces.
func (c *Client) Greeting(ctx context.Context) (string, error) {
	start := time.Now()
	step := c.step("waiting for the greeting from %s", c.o.Addr)
	defer c.arm(ctx)()
	line, err := c.r.greeting()
	if err != nil {
		return "", c.fail(ctx, step, start, err)
	}
	c.debugf(2, "greeting: %s", plugin.Clean(line, 0))
	return ParseGreeting(line)
}

// Login logs in, plainly or with the MD5 challenge (the secret then never
// crosses the network). It asks for no events: a check has no use for
// them, and on a busy PBX they would only be queued for it and skipped.
func (c *Client) Login(ctx context.Context, user, secret string, useMD5 bool) error {
	start := time.Now()
	c.redact = append(c.redact, secret)
	fields := []goami2.Header{{Name: "Username", Value: user}}
	if useMD5 {
		step := c.step("asking %s for an MD5 challenge", c.o.Addr)
		m, err := c.action(ctx, step, "Challenge", goami2.Header{Name: "AuthType", Value: "MD5"})
		if err != nil {
			return err
		}
		if err := checkResponse("Challenge", m); err != nil {
			return &StepError{Step: step, Err: err, Waited: time.Since(start)}
		}
		sum := md5.Sum([]byte(m.Field("Challenge") + secret))
		fields = append(fields, goami2.Header{Name: "AuthType", Value: "MD5"}, goami2.Header{Name: "Key", Value: hex.EncodeToString(sum[:])})
	} else {
		fields = append(fields, goami2.Header{Name: "Secret", Value: secret})
	}
	fields = append(fields, goami2.Header{Name: "Events", Value: "off"})
	step := c.step("logging in to %s as %s", c.o.Addr, plugin.Clean(user, 64))
	m, err := c.action(ctx, step, "Login", fields...)
	if err != nil {
		return err
	}
	if !m.IsSuccess() {
		return &LoginError{User: user, Message: c.scrub(m.Field("Message"))}
	}
	return nil
}

// Ping sends Ping and returns its response.
func (c *Client) Ping(ctx context.Context) (Pong, error) {
	step := c.step("waiting for the Ping response from %s", c.o.Addr)
	m, err := c.action(ctx, step, "Ping")
	if err != nil {
		return Pong{}, err
	}
	if err := checkResponse("Ping", m); err != nil {
		return Pong{}, c.scrubAction(err)
	}
	return ParsePong(m), nil
}

// CoreStatus asks for the core status; dates are read in loc.
func (c *Client) CoreStatus(ctx context.Context, loc *time.Location) (CoreStatus, error) {
	step := c.step("waiting for the CoreStatus response from %s", c.o.Addr)
	m, err := c.action(ctx, step, "CoreStatus")
	if err != nil {
		return CoreStatus{}, err
	}
	if err := checkResponse("CoreStatus", m); err != nil {
		return CoreStatus{}, c.scrubAction(err)
	}
	return ParseCoreStatus(m, loc)
}

// Logoff says goodbye ("Response: Goodbye"), so Asterisk logs a logoff
// rather than a dropped connection.
func (c *Client) Logoff(ctx context.Context) error {
	step := c.step("logging off from %s", c.o.Addr)
	_, err := c.action(ctx, step, "Logoff")
	return err
}

// action sends an action with a fresh ActionID and returns the response
// carrying that ActionID, skipping events and anything else on the way.
func (c *Client) action(ctx context.Context, step, name string, fields ...goami2.Header) (*goami2.Message, error) {
	start := time.Now()
	defer c.arm(ctx)()
	c.seq++
	id := c.idBase + "-" + strconv.Itoa(c.seq)
	m := goami2.NewAction(name)
	m.AddField("ActionID", id)
	for _, f := range fields {
		m.AddField(f.Name, f.Value)
	}
	c.debugf(3, "sent: %s", c.show(m))
	if _, err := c.conn.Write(m.Byte()); err != nil {
		return nil, c.fail(ctx, step, start, err)
	}
	for {
		f, err := c.r.frame()
		if err != nil {
			return nil, c.fail(ctx, step, start, err)
		}
		if f.isEvent() {
			c.skipped++
			_, ev := f.first()
			if c.skipped <= 20 {
				c.debugf(3, "skipped event %s", plugin.Clean(c.scrub(ev), 64))
			}
			continue
		}
		resp, err := parseFrame(f)
		if err != nil {
			return nil, &StepError{Step: step, Err: c.scrubMalformed(err), Waited: time.Since(start)}
		}
		if got := resp.ActionID(); got != id {
			c.debugf(2, "skipped a response for ActionID %s", quote(c.scrub(got), 64))
			continue
		}
		c.debugf(3, "received: %s", c.show(resp))
		return resp, nil
	}
}

// show renders a message on one line for -vvv, with secrets masked.
func (c *Client) show(m *goami2.Message) string {
	var parts []string
	for _, h := range m.Headers() {
		v := h.Value
		if strings.EqualFold(h.Name, "Secret") || strings.EqualFold(h.Name, "Key") {
			v = "[secret]"
		}
		parts = append(parts, h.Name+": "+c.scrub(v))
	}
	return plugin.Clean(strings.Join(parts, " / "), 1000)
}

// scrub removes the secret from text the peer sent.
func (c *Client) scrub(s string) string {
	for _, r := range c.redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[secret]")
		}
	}
	return s
}

func (c *Client) scrubAction(err error) error {
	var ae *ActionError
	if errors.As(err, &ae) {
		ae.Message = c.scrub(ae.Message)
		ae.Response = c.scrub(ae.Response)
	}
	return err
}

func (c *Client) scrubMalformed(err error) error {
	var me *MalformedError
	if errors.As(err, &me) {
		me.Line = c.scrub(me.Line)
	}
	return err
}
