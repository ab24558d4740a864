package ami

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// replayConn is an AMI server in memory: replies[0] (the greeting) is
// readable at once, and each write of the client releases the next reply,
// with "$ID" replaced by the ActionID the client just sent. When nothing
// is left to read, reads end with io.EOF, so a session over it always
// ends promptly.
type replayConn struct {
	mu      sync.Mutex
	replies []string
	buf     bytes.Buffer
	sent    bytes.Buffer
}

var actionID = regexp.MustCompile(`(?m)^ActionID: (.*)\r$`)

func newReplayConn(replies []string) *replayConn {
	c := &replayConn{replies: replies}
	c.release("")
	return c
}

func (c *replayConn) release(id string) {
	if len(c.replies) == 0 {
		return
	}
	c.buf.WriteString(strings.ReplaceAll(c.replies[0], "$ID", id))
	c.replies = c.replies[1:]
}

func (c *replayConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf.Len() == 0 {
		return 0, io.EOF
	}
	return c.buf.Read(b)
}

func (c *replayConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent.Write(b)
	id := ""
	if m := actionID.FindSubmatch(b); m != nil {
		id = string(m[1])
	}
	c.release(id)
	return len(b), nil
}

func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// replySep separates the server's replies in a fuzz input.
const replySep = "\x00|\x00"

var firstLineRE = regexp.MustCompile(`^PBX_AMI (OK|WARNING|CRITICAL|UNKNOWN)( - [^|\n]*)?( \| .*)?$`)

// FuzzSession runs a whole check session (greeting, login, Ping,
// CoreStatus, logoff) against arbitrary server replies and holds the
// result to what every output must be: one well-formed first line, valid
// perfdata, never the secret, never a panic.
func FuzzSession(f *testing.F) {
	started := time.Date(2024, 3, 1, 8, 0, 0, 0, time.Local)
	ts := started.Add(time.Hour)
	seeds := [][]string{
		{greeting20, loginOK + fullyBooted20, peerStatus + pong(ts), oddEvent + coreStatus(3, started, started), goodbye},
		{greeting13, loginOK, pong(ts), coreStatus(0, started, started), goodbye},
		{greeting20, loginFailed},
		{greeting20, loginOK, "Response: Error\r\nActionID: $ID\r\nMessage: Permission denied\r\n\r\n"},
		{greeting20, loginOK, pong(ts), "Response: Success\r\nActionID: $ID\r\nCoreCurrentCalls: x\r\n\r\n"},
		{"\xff\xfegarbage\r\n"},
		{greeting20, loginOK, pong(ts)[:20]},
		{greeting20, "Response: Error\r\nActionID: $ID\r\nMessage: " + testSecret + "\r\n\r\n"},
		{"Asterisk Call Manager/9.0.0\n", "Response: Success\nActionID: $ID\n\n", "Response: Pong\nActionID: $ID\n\n"},
	}
	for _, s := range seeds {
		f.Add([]byte(strings.Join(s, replySep)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := newReplayConn(strings.Split(string(data), replySep))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs := Probe(ctx, Options{
			Addr:   "192.0.2.11:5038",
			Dialer: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
			Debugf: func(int, string, ...any) {},
		}, Login{User: "monitor", Secret: testSecret, Location: time.UTC})
		if ctx.Err() != nil {
			t.Fatal("the session did not end on its own")
		}
		for _, p := range []Policy{
			{Ping: threshold.Pairf("500", "2000"), TimeoutState: plugin.Critical},
			{Ping: threshold.Pairf("0", "0"), Calls: threshold.Pairf("1", "2"), MinUptime: time.Hour, TimeoutState: plugin.Unknown, Verbose: 3},
		} {
			out := Evaluate(obs, p).Format("PBX_AMI")
			first, _, _ := strings.Cut(out, "\n")
			if !firstLineRE.MatchString(first) {
				t.Fatalf("first line %q", first)
			}
			if _, perf, ok := strings.Cut(first, " | "); ok {
				if _, err := plugin.SplitPerfdata(perf); err != nil {
					t.Fatalf("perfdata %q: %v", perf, err)
				}
			}
			if strings.Contains(out, testSecret) {
				t.Fatalf("the secret leaked: %q", out)
			}
		}
	})
}

// FuzzFrameReader feeds arbitrary bytes to the framing reader and the
// message parser: lines stay bounded and never hold a line end, and
// nothing panics (goami2.Parse indexes past unterminated input; the
// framing must never hand it any).
func FuzzFrameReader(f *testing.F) {
	for _, s := range []string{
		greeting20 + loginOK + fullyBooted20 + peerStatus,
		greeting13 + oddEvent + otherResponse,
		"Asterisk Call Manager/9.0.0\n\n\nResponse: Success\nActionID: 1\n\n",
		"Asterisk Call Manager/9.0.0\r\nA\r",
		"Asterisk Call Manager/9.0.0\r\nAB",
		"Asterisk Call Manager/9.0.0\r\n" + strings.Repeat("x", maxLine+10) + "\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newFrameReader(bytes.NewReader(data))
		g, err := r.greeting()
		if err == nil && !strings.HasPrefix(g, GreetingPrefix) {
			t.Fatalf("greeting %q accepted", g)
		}
		if err != nil {
			r = newFrameReader(bytes.NewReader(data)) // frames alone, too
		}
		for range 10000 {
			fr, err := r.frame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.lines) == 0 || len(fr.lines) > maxLines {
				t.Fatalf("%d lines", len(fr.lines))
			}
			for _, l := range fr.lines {
				if len(l) > maxLine || strings.Contains(l, "\n") {
					t.Fatalf("line of %d bytes: %q", len(l), l)
				}
			}
			if m, err := parseFrame(fr); err == nil && m.Len() > len(fr.lines) {
				t.Fatalf("%d headers from %d lines", m.Len(), len(fr.lines))
			}
			_ = fr.isEvent()
		}
		t.Fatal("the reader did not reach the end of the input")
	})
}
