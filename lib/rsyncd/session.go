package rsyncd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pbxha/lib/plugin"
)

// Limits that keep a misbehaving peer from making the check hold unbounded
// memory. rsync's own lines stay far below them (BIGPATHBUFLEN is 5 KiB).
const (
	maxGreeting = 1024
	maxLine     = 8192
	// maxListLines bounds a module list plus its MOTD.
	maxListLines = 10000
	// exitSinceProtocol: daemons before protocol 25 end a listing by
	// hanging up instead of sending "@RSYNCD: EXIT" (kluge_around_eof).
	exitSinceProtocol = 25
)

// StepError is a failure at one step of a session: the step ("waiting for
// the greeting from 198.51.100.2:873") and why.
type StepError struct {
	Step    string
	Err     error
	Timeout bool          // the step ran out of time
	Waited  time.Duration // how long the step had run
	Partial int           // bytes of a line that began but did not end
}

func (e *StepError) Error() string {
	var why string
	switch {
	case e.Timeout && e.Partial > 0:
		why = fmt.Sprintf("stopped mid-line after %d bytes, nothing more within %s", e.Partial, round(e.Waited))
	case e.Timeout:
		why = "no answer within " + round(e.Waited)
	case e.Partial > 0 && errors.Is(e.Err, io.ErrUnexpectedEOF):
		why = fmt.Sprintf("the daemon closed the connection mid-line, after %d bytes", e.Partial)
	default:
		why = reason(e.Err)
	}
	return e.Step + ": " + why
}

func (e *StepError) Unwrap() error { return e.Err }

// AuthError: the daemon refused the user's password for a module.
type AuthError struct {
	Module, User string
	Message      string // the daemon's @ERROR text, raw
	NoPassword   bool   // none was given
}

func (e *AuthError) Error() string {
	s := "auth rejected"
	if e.User != "" {
		s += " for user " + plugin.Clean(e.User, 64)
	}
	s += " on module " + plugin.Clean(e.Module, 64) + ": " + plugin.Clean(e.Message, 0)
	if e.NoPassword {
		s += " (no password was given)"
	}
	return s
}

// UnknownModuleError: the daemon has no such module (or hides it from this
// address: rsync says "Unknown module" then too).
type UnknownModuleError struct {
	Module  string
	Message string
}

func (e *UnknownModuleError) Error() string {
	return "module " + plugin.Clean(e.Module, 64) + " not found: " + plugin.Clean(e.Message, 0)
}

// protoErr is a breach of the protocol noticed here; its text is the
// whole reason.
type protoErr string

func (e protoErr) Error() string { return string(e) }

// reason says in a few words why a network operation failed.
func reason(err error) string {
	var ge *GreetingError
	var de *DaemonError
	var pe protoErr
	var dns *net.DNSError
	switch {
	case errors.As(err, &ge), errors.As(err, &de), errors.As(err, &pe):
		return err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not available on this host"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset by the daemon"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the daemon closed the connection mid-line"
	case errors.Is(err, io.EOF):
		return "the daemon closed the connection"
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

// Options configure the sessions of one check.
type Options struct {
	Addr string // host:port
	// Dialer opens the TCP connection; nil means a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Protocol is the version we announce; 0 means ClientProtocol.
	Protocol int
	// Digests is the daemon-auth digest list we announce; nil means
	// DefaultDigests. NoDigests sends none (as rsync before 3.2.7 did).
	Digests   []string
	NoDigests bool
	// Debugf receives -v lines; nil discards them.
	Debugf func(level int, format string, args ...any)
	// Step is told what the session does before each step that can block
	// (plugin.Env.Step); nil ignores it.
	Step func(format string, args ...any)
}

func (o Options) protocol() int {
	if o.Protocol > 0 {
		return o.Protocol
	}
	return ClientProtocol
}

func (o Options) offered() []string {
	switch {
	case o.NoDigests:
		return nil
	case o.Digests != nil:
		return o.Digests
	}
	return DefaultDigests
}

func (o Options) debugf(level int, format string, args ...any) {
	if o.Debugf != nil {
		o.Debugf(level, format, args...)
	}
}

func (o Options) step(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	if o.Step != nil {
		o.Step("%s", s)
	}
	return s
}

// session is one TCP connection to the daemon. Every read and write has
// the deadline of the context it runs under.
type session struct {
	o    Options
	conn net.Conn
	r    *lineReader
}

// dial connects, sends our greeting followed by request (an empty line for
// the module list, or a module name) in one write, and reads the daemon's
// greeting. Sending before reading is what rsync's client does for its
// greeting; adding the request saves a round trip and changes nothing for
// the daemon, which reads line by line after writing its greeting. It
// returns the time from dialing to the greeting.
func dial(ctx context.Context, o Options, request string) (*session, Greeting, time.Duration, error) {
	start := time.Now()
	step := o.step("connecting to %s", o.Addr)
	d := o.Dialer
	if d == nil {
		d = (&net.Dialer{}).DialContext
	}
	conn, err := d(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, Greeting{}, 0, fail(ctx, step, start, err, nil)
	}
	s := &session{o: o, conn: conn, r: newLineReader(conn)}
	defer s.arm(ctx)()
	out := clientGreeting(o.protocol(), o.offered()) + request + "\n"
	o.debugf(3, "sent: %s", plugin.Clean(out, 0))
	if _, err := conn.Write([]byte(out)); err != nil {
		conn.Close()
		return nil, Greeting{}, 0, fail(ctx, step, start, err, nil)
	}
	step = o.step("waiting for the greeting from %s", o.Addr)
	line, err := s.r.greeting()
	if err != nil {
		conn.Close()
		return nil, Greeting{}, 0, fail(ctx, step, start, err, s.r)
	}
	took := time.Since(start)
	o.debugf(2, "greeting: %s", plugin.Clean(line, 0))
	g, err := ParseGreeting(line)
	if err != nil {
		conn.Close()
		return nil, Greeting{}, 0, &StepError{Step: step, Err: err, Waited: took}
	}
	return s, g, took, nil
}

// arm puts ctx's deadline on the connection and makes ctx's cancellation
// end any read or write in progress.
func (s *session) arm(ctx context.Context) (disarm func() bool) {
	dl, _ := ctx.Deadline() // zero: none
	_ = s.conn.SetDeadline(dl)
	return context.AfterFunc(ctx, func() { _ = s.conn.SetDeadline(time.Unix(1, 0)) })
}

func (s *session) close() { s.conn.Close() }

// fail builds the StepError for err, noting whether time ran out and how
// much of an unfinished line had arrived.
func fail(ctx context.Context, step string, start time.Time, err error, r *lineReader) error {
	e := &StepError{Step: step, Err: err, Waited: time.Since(start)}
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		e.Timeout = true
	}
	if r != nil {
		e.Partial = r.pending
	}
	return e
}

// Listing is what the module-list session learned.
type Listing struct {
	Greeted  bool // the greeting arrived: Greeting, Protocol and Connect hold
	Greeting Greeting
	Protocol int           // negotiated
	Connect  time.Duration // dial until the greeting was read
	Modules  []Module
	MOTD     []string // lines that are not module lines, raw
}

// List asks the daemon for its module list (an empty line in place of a
// module name; start_daemon answers with send_listing).
func List(ctx context.Context, o Options) (Listing, error) {
	s, g, took, err := dial(ctx, o, "")
	if err != nil {
		return Listing{}, err
	}
	defer s.close()
	defer s.arm(ctx)()
	l := Listing{Greeted: true, Greeting: g, Protocol: Negotiate(o.protocol(), g), Connect: took}
	start := time.Now()
	step := o.step("reading the module list from %s", o.Addr)
	l.Modules, l.MOTD, err = readListing(s.r, g.Protocol)
	if err != nil {
		var de *DaemonError
		var pe protoErr
		if errors.As(err, &de) || errors.As(err, &pe) && !errors.Is(err, errNoExit) {
			return l, &StepError{Step: step, Err: err, Waited: time.Since(start)}
		}
		return l, fail(ctx, step, start, err, s.r)
	}
	return l, nil
}

// Breaches of the listing protocol.
var (
	errListTooLong = protoErr(fmt.Sprintf("more than %d lines without an end", maxListLines))
	errNoExit      = protoErr("the daemon closed the connection before the end of the module list")
)

// readListing reads module lines up to "@RSYNCD: EXIT". protocol is the
// daemon's: before 25 the list ends when the daemon hangs up.
func readListing(r *lineReader, protocol int) (mods []Module, motd []string, err error) {
	for n := 0; ; n++ {
		if n >= maxListLines {
			return mods, motd, errListTooLong
		}
		line, err := r.line()
		if err != nil {
			if errors.Is(err, io.EOF) && protocol < exitSinceProtocol {
				return mods, motd, nil
			}
			if errors.Is(err, io.EOF) {
				err = errNoExit
			}
			return mods, motd, err
		}
		switch {
		case line == lineExit:
			return mods, motd, nil
		case strings.HasPrefix(line, ErrorPrefix):
			return mods, motd, &DaemonError{Message: errorText(line)}
		}
		if m, ok := ParseListLine(line); ok {
			mods = append(mods, m)
		} else if line != "" {
			motd = append(motd, line)
		}
	}
}

// Credentials log in to a module.
type Credentials struct {
	User     string
	Password string // never printed
}

// Access is what opening one module told.
type Access struct {
	Module string
	// Exists: the daemon took the module name (it asked for a password or
	// said OK).
	Exists bool
	// AuthRequired: it asked for a password.
	AuthRequired bool
	// Authenticated: it accepted ours.
	Authenticated bool
	Digest        string // the digest the password was hashed with
	Took          time.Duration
}

// Open selects a module as a transfer would, answers the password
// challenge when cred is given, and hangs up once the daemon has said
// whether it accepts. Without cred it stops at the challenge. The daemon
// logs the hang-up after "@RSYNCD: OK" as a protocol error (it was waiting
// for the transfer's arguments); the README says so.
func Open(ctx context.Context, o Options, module string, cred *Credentials) (Access, error) {
	a := Access{Module: module}
	start := time.Now()
	s, g, _, err := dial(ctx, o, module)
	if err != nil {
		return a, err
	}
	defer s.close()
	defer s.arm(ctx)()
	step := o.step("opening module %s on %s", plugin.Clean(module, 64), o.Addr)
	sent := false
	for n := 0; ; n++ {
		if n >= maxListLines {
			return a, &StepError{Step: step, Err: errListTooLong, Waited: time.Since(start)}
		}
		line, err := s.r.line()
		if err != nil {
			return a, fail(ctx, step, start, err, s.r)
		}
		switch {
		case strings.HasPrefix(line, authReqd):
			a.Exists, a.AuthRequired = true, true
			if cred == nil {
				a.Took = time.Since(start)
				return a, nil
			}
			if sent {
				return a, &StepError{Step: step, Err: protoErr("the daemon asked for the password twice"), Waited: time.Since(start)}
			}
			step = o.step("logging in to module %s on %s as %s", plugin.Clean(module, 64), o.Addr, plugin.Clean(cred.User, 64))
			challenge := strings.TrimSpace(strings.TrimPrefix(line, authReqd))
			a.Digest, err = ChooseDigest(o.offered(), g, Negotiate(o.protocol(), g))
			if err != nil {
				return a, &StepError{Step: step, Err: err, Waited: time.Since(start)}
			}
			resp, err := AuthResponse(cred.User, cred.Password, challenge, a.Digest)
			if err != nil {
				return a, &StepError{Step: step, Err: err, Waited: time.Since(start)}
			}
			o.debugf(3, "sent: %s [%s response]", plugin.Clean(cred.User, 64), a.Digest)
			if _, err := s.conn.Write([]byte(resp + "\n")); err != nil {
				return a, fail(ctx, step, start, err, s.r)
			}
			sent = true
		case line == lineOK:
			a.Exists = true
			a.Authenticated = sent
			a.Took = time.Since(start)
			return a, nil
		case strings.HasPrefix(line, ErrorPrefix):
			msg := errorText(line)
			switch {
			case sent && strings.HasPrefix(msg, "auth failed"):
				return a, &AuthError{Module: module, User: cred.User, Message: scrub(msg, cred)}
			case strings.HasPrefix(msg, "Unknown module"):
				return a, &UnknownModuleError{Module: module, Message: msg}
			}
			return a, &StepError{Step: step, Err: &DaemonError{Message: scrub(msg, cred)}, Waited: time.Since(start)}
		case line == lineExit:
			return a, &StepError{Step: step, Err: protoErr("the daemon ended the session without answering"), Waited: time.Since(start)}
		default:
			o.debugf(3, "motd: %s", plugin.Clean(line, 0))
		}
	}
}

// scrub removes the password from text the daemon sent, in case one echoes
// it.
func scrub(s string, cred *Credentials) string {
	if cred != nil && cred.Password != "" {
		s = strings.ReplaceAll(s, cred.Password, "[secret]")
	}
	return s
}

// lineReader splits the daemon's byte stream into lines through a buffer,
// so a line split over TCP segments is joined and what follows it waits
// for the next call.
type lineReader struct {
	br *bufio.Reader
	// pending counts the bytes of a line that has not ended yet, so a stall
	// can be reported as "stopped mid-line".
	pending int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 4096)}
}

// greeting reads the first line. It fails at the first byte that cannot
// begin "@RSYNCD: " or "@ERROR" rather than waiting for a line end that a
// peer speaking another protocol may never send; what else already arrived
// goes into the error, for the user.
func (r *lineReader) greeting() (string, error) {
	var b []byte
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			// Only bytes that could begin a greeting get here: a daemon
			// that hangs up or stalls after them is cut short, not
			// something else.
			// (A reset counts as a hang-up: our request, unread, makes
			// the peer's kernel answer the close with RST.)
			r.pending = len(b)
			if len(b) > 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == '\n' {
			r.pending = 0
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, c)
		if !greetingStart(b) {
			more, _ := r.br.Peek(min(r.br.Buffered(), 64))
			if i := strings.IndexAny(string(more), "\r\n"); i >= 0 {
				more = more[:i]
			}
			return "", &GreetingError{Got: string(b) + string(more)}
		}
		if len(b) > maxGreeting {
			return "", &GreetingError{Got: string(b[:64]) + "..."}
		}
	}
}

// greetingStart reports whether b can still become a greeting or an error
// line.
func greetingStart(b []byte) bool {
	for _, p := range []string{GreetingPrefix, ErrorPrefix} {
		n := min(len(b), len(p))
		if string(b[:n]) == p[:n] {
			return true
		}
	}
	return false
}

// line reads one line without its terminator ("\n", a "\r" before it is
// dropped too). Bytes beyond maxLine are read and dropped. A connection
// that ends inside a line gives io.ErrUnexpectedEOF.
func (r *lineReader) line() (string, error) {
	var buf []byte
	r.pending = 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.pending += len(chunk)
		if room := maxLine - len(buf); len(chunk) > room {
			buf = append(buf, chunk[:room]...)
		} else {
			buf = append(buf, chunk...)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && r.pending > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	r.pending = 0
	s := strings.TrimSuffix(string(buf), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}
