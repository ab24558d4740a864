package ami

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fixedNow is Unix 1700000000.123456, so Ping's Timestamp is predictable.
var fixedNow = time.Unix(1700000000, 123456000).UTC()

// quietConfig has no background events and a fixed clock, so that every
// byte the server sends is known in advance.
func quietConfig() Config {
	return Config{
		Addr:                "127.0.0.1:0",
		Users:               map[string]string{"admin": "s3cret"},
		Now:                 func() time.Time { return fixedNow },
		Location:            time.UTC,
		EventInterval:       -1,
		EventBeforeResponse: -1,
		AuthFailDelay:       time.Millisecond,
		Core: CoreState{
			CurrentCalls:   3,
			ProcessedCalls: 42,
			StartupTime:    fixedNow.Add(-time.Hour),
			ReloadTime:     fixedNow.Add(-10 * time.Minute),
		},
	}
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	s := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Close()
	})
	return s
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("writing %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes and compares them.
func (c *client) expect(want string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c.br, got)
	if err != nil || string(got) != want {
		c.t.Fatalf("read %q (%v), want %q", got[:n], err, want)
	}
}

// msg reads one message (up to and including the empty line).
func (c *client) msg() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			c.t.Fatalf("reading a message: got %q, %v", b.String(), err)
		}
		if line == "\r\n" {
			return b.String()
		}
	}
}

// expectEOF asserts the server closed the connection and sent nothing more.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	rest, err := io.ReadAll(c.br)
	if err != nil || len(rest) != 0 {
		c.t.Fatalf("want EOF, got %q, %v", rest, err)
	}
}

// expectSilence asserts nothing arrives for d and the connection stays open.
func (c *client) expectSilence(d time.Duration) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(d))
	b, err := c.br.ReadByte()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("want silence, got byte %q, %v", b, err)
	}
}

const (
	greeting = "Asterisk Call Manager/9.0.0\r\n"
	loginReq = "Action: Login\r\nActionID: 1\r\nUsername: admin\r\nSecret: s3cret\r\n\r\n"
	loginOK  = "Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
	booted   = "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 3600\r\nLastReload: 600\r\nStatus: Fully Booted\r\n\r\n"
)

func (c *client) login() {
	c.t.Helper()
	c.expect(greeting)
	c.send(loginReq)
	c.expect(loginOK)
	c.expect(booted)
}

func TestGreetingComesFirstAndAlone(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"", greeting},
		{"7.0.3", "Asterisk Call Manager/7.0.3\r\n"},
		{"Asterisk Call Manager/5.0.1", "Asterisk Call Manager/5.0.1\r\n"},
	} {
		cfg := quietConfig()
		cfg.Version = tc.version
		cfg.EventInterval = 5 * time.Millisecond // nothing may come before login anyway
		s := start(t, cfg)
		c := dial(t, s)
		c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var got []byte
		one := make([]byte, 1)
		for !strings.HasSuffix(string(got), "\r\n") {
			if _, err := c.c.Read(one); err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			got = append(got, one[0])
		}
		if string(got) != tc.want {
			t.Errorf("greeting %q, want %q", got, tc.want)
		}
		c.expectSilence(150 * time.Millisecond)
	}
}

// TestTranscript pins every byte of the session the AMI check runs.
func TestTranscript(t *testing.T) {
	s := start(t, quietConfig())
	c := dial(t, s)
	steps := []struct{ send, want string }{
		{"", greeting},
		{loginReq, loginOK + booted},
		{"Action: Ping\r\nActionID: 2\r\n\r\n",
			"Response: Success\r\nActionID: 2\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n"},
		{"Action: CoreStatus\r\nActionID: 3\r\n\r\n",
			"Response: Success\r\nActionID: 3\r\nCoreStartupDate: 2023-11-14\r\nCoreStartupTime: 21:13:20\r\n" +
				"CoreReloadDate: 2023-11-14\r\nCoreReloadTime: 22:03:20\r\nCoreCurrentCalls: 3\r\nCoreProcessedCalls: 42\r\n\r\n"},
		{"Action: Logoff\r\nActionID: 4\r\n\r\n",
			"Response: Goodbye\r\nActionID: 4\r\nMessage: Thanks for all the fish.\r\n\r\n"},
	}
	var transcript strings.Builder
	for _, st := range steps {
		if st.send != "" {
			c.send(st.send)
			transcript.WriteString(quoteLines("C: ", st.send))
		}
		c.expect(st.want)
		transcript.WriteString(quoteLines("S: ", st.want))
	}
	c.expectEOF()
	t.Logf("transcript:\n%s", transcript.String())
	if got := s.Logins(); got != 1 {
		t.Errorf("Logins() = %d, want 1", got)
	}
}

func quoteLines(prefix, s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\r\n") {
		if l != "" {
			b.WriteString(prefix + strings.ReplaceAll(l, "\r\n", `\r\n`) + "\n")
		}
	}
	return b.String()
}

func TestResponses(t *testing.T) {
	tooMany := "ActionID: m\r\n" + strings.Repeat("X-Filler: 1\r\n", maxHeaders) + "Action: Ping\r\n\r\n"
	tests := []struct {
		name   string
		login  bool
		send   string
		want   string
		closes bool
	}{
		{"action before login is denied", false, "Action: Ping\r\nActionID: a\r\n\r\n",
			"Response: Error\r\nActionID: a\r\nMessage: Permission denied\r\n\r\n", false},
		{"empty request", false, "\r\n",
			"Response: Error\r\nMessage: Missing action in request\r\n\r\n", false},
		{"missing action keeps ActionID", false, "ActionID: 5\r\nFoo: bar\r\n\r\n",
			"Response: Error\r\nActionID: 5\r\nMessage: Missing action in request\r\n\r\n", false},
		{"empty Action header is skipped", false, "Action:\r\nAction: Ping\r\n\r\n",
			"Response: Error\r\nMessage: Permission denied\r\n\r\n", false},
		{"challenge needs AuthType", false, "Action: Challenge\r\nActionID: c\r\n\r\n",
			"Response: Error\r\nActionID: c\r\nMessage: Must specify AuthType\r\n\r\n", false},
		{"logoff before login", false, "Action: Logoff\r\n\r\n",
			"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n", true},
		{"line too long", false, "ActionID: l\r\nAction: " + strings.Repeat("P", 1100) + "\r\n\r\n",
			"Response: Error\r\nActionID: l\r\nMessage: Failed to parse message: line too long\r\n\r\n", false},
		{"too many lines", false, tooMany,
			"Response: Error\r\nActionID: m\r\nMessage: Too many lines in message or allocation failure\r\n\r\n", false},
		{"headers are case-insensitive, bare LF works", true, "action: PING\nactionid: x-1\n\n",
			"Response: Success\r\nActionID: x-1\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n", false},
		{"no ActionID, no ActionID line", true, "Action: Ping\r\n\r\n",
			"Response: Success\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n", false},
		{"unknown action", true, "Action: Frobnicate\r\nActionID: u\r\n\r\n",
			"Response: Error\r\nActionID: u\r\nMessage: Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands.\r\n\r\n", false},
		{"login twice", true, loginReq,
			"Response: Success\r\nActionID: 1\r\nMessage: Already authenticated\r\n\r\n", false},
		{"command core show version", true, "Action: Command\r\nActionID: v\r\nCommand: core show version\r\n\r\n",
			"Response: Success\r\nActionID: v\r\nMessage: Command output follows\r\n" +
				"Output: Asterisk 20.5.0 built by pbxlab @ pbxlab on a x86_64 running Linux on 2023-11-14 21:13:20 UTC\r\n\r\n", false},
		{"command core show channels", true, "Action: Command\r\nCommand: core show channels\r\n\r\n",
			"Response: Success\r\nMessage: Command output follows\r\n" +
				"Output: " + fmt.Sprintf("%-64s %-32s %-7s %-30s", "Channel", "Location", "State", "Application(Data)") + "\r\n" +
				"Output: " + fmt.Sprintf("%-64s %-32s %-7s %-30s", "PJSIP/1001-00000001", "600@from-internal:1", "Up", "Echo()") + "\r\n" +
				"Output: " + fmt.Sprintf("%-64s %-32s %-7s %-30s", "PJSIP/1002-00000002", "600@from-internal:1", "Up", "Echo()") + "\r\n" +
				"Output: " + fmt.Sprintf("%-64s %-32s %-7s %-30s", "PJSIP/1003-00000003", "600@from-internal:1", "Up", "Echo()") + "\r\n" +
				"Output: 3 active channels\r\nOutput: 3 active calls\r\nOutput: 42 calls processed\r\n\r\n", false},
		{"unknown CLI command", true, "Action: Command\r\nCommand: sip show peers\r\n\r\n",
			"Response: Error\r\nMessage: Command output follows\r\n" +
				"Output: No such command 'sip show peers' (type 'core show help sip show peers' for other possible commands)\r\n\r\n", false},
		{"blacklisted CLI command", true, "Action: Command\r\nCommand: module  unload chan_pjsip.so\r\n\r\n",
			"Response: Error\r\nMessage: Command blacklisted\r\n\r\n", false},
		{"events off", true, "Action: Events\r\nActionID: e\r\nEventMask: off\r\n\r\n",
			"Response: Success\r\nActionID: e\r\nEvents: Off\r\n\r\n", false},
		{"events without mask", true, "Action: Events\r\n\r\n",
			"Response: Error\r\nMessage: Invalid event mask\r\n\r\n", false},
		{"core settings", true, "Action: CoreSettings\r\nActionID: cs\r\n\r\n",
			"Response: Success\r\nActionID: cs\r\nAMIversion: 9.0.0\r\nAsteriskVersion: 20.5.0\r\nSystemName: \r\n" +
				"CoreMaxCalls: 0\r\nCoreMaxLoadAvg: 0.000000\r\nCoreRunUser: asterisk\r\nCoreRunGroup: asterisk\r\n" +
				"CoreMaxFilehandles: 0\r\nCoreRealTimeEnabled: No\r\nCoreCDRenabled: Yes\r\nCoreHTTPenabled: No\r\n" +
				"SoundsSearchCustomDir: No\r\n\r\n", false},
	}
	s := start(t, quietConfig())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			if tc.login {
				c.login()
			} else {
				c.expect(greeting)
			}
			c.send(tc.send)
			c.expect(tc.want)
			if tc.closes {
				c.expectEOF()
				return
			}
			// The session is still usable afterwards.
			c.send("Action: Ping\r\nActionID: after\r\n\r\n")
			if got := c.msg(); !strings.HasPrefix(got, "Response: ") || !strings.Contains(got, "ActionID: after\r\n") {
				t.Errorf("next response %q", got)
			}
		})
	}
}

func TestLoginFailureClosesSession(t *testing.T) {
	tests := []struct{ name, user, secret string }{
		{"wrong secret", "admin", "nope"},
		{"secret is case-sensitive", "admin", "S3CRET"},
		{"unknown user", "root", "s3cret"},
		{"no username", "", "s3cret"},
	}
	s := start(t, quietConfig())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			c.expect(greeting)
			c.send("Action: Login\r\nActionID: f\r\nUsername: " + tc.user + "\r\nSecret: " + tc.secret + "\r\n\r\n")
			c.expect("Response: Error\r\nActionID: f\r\nMessage: Authentication failed\r\n\r\n")
			c.expectEOF()
			if got := s.FailedLogins(); got != int64(i+1) {
				t.Errorf("FailedLogins() = %d, want %d", got, i+1)
			}
		})
	}
	// Usernames are case-insensitive.
	c := dial(t, s)
	c.expect(greeting)
	c.send("Action: Login\r\nUsername: ADMIN\r\nSecret: s3cret\r\n\r\n")
	c.expect("Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
	if s.Logins() != 1 {
		t.Errorf("Logins() = %d, want 1", s.Logins())
	}
}

func TestFailedLoginIsDelayed(t *testing.T) {
	cfg := quietConfig()
	cfg.AuthFailDelay = 300 * time.Millisecond
	s := start(t, cfg)
	c := dial(t, s)
	c.expect(greeting)
	begin := time.Now()
	c.send("Action: Login\r\nUsername: admin\r\nSecret: x\r\n\r\n")
	c.expect("Response: Error\r\nMessage: Authentication failed\r\n\r\n")
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Errorf("answered after %s, want >= 300ms", d)
	}
}

func TestLoginWithoutEventsSkipsFullyBooted(t *testing.T) {
	s := start(t, quietConfig())
	c := dial(t, s)
	c.expect(greeting)
	c.send("Action: Login\r\nUsername: admin\r\nSecret: s3cret\r\nEvents: off\r\n\r\n")
	c.expect("Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
	if n := s.Emit(Event{Name: "UserEvent"}); n != 0 {
		t.Errorf("Emit reached %d sessions, want 0", n)
	}
	c.send("Action: Ping\r\n\r\n")
	c.expect("Response: Success\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n")
}

func TestMD5Challenge(t *testing.T) {
	s := start(t, quietConfig())
	c := dial(t, s)
	c.expect(greeting)
	c.send("Action: Challenge\r\nActionID: ch\r\nAuthType: md5\r\n\r\n")
	m := c.msg()
	const head = "Response: Success\r\nActionID: ch\r\nChallenge: "
	if !strings.HasPrefix(m, head) || !strings.HasSuffix(m, "\r\n\r\n") {
		t.Fatalf("challenge response %q", m)
	}
	challenge := strings.TrimSuffix(strings.TrimPrefix(m, head), "\r\n\r\n")
	sum := md5.Sum([]byte(challenge + "s3cret"))
	c.send("Action: Login\r\nAuthType: MD5\r\nUsername: admin\r\nKey: " + hex.EncodeToString(sum[:]) + "\r\n\r\n")
	c.expect("Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
}

func TestAuthTimeoutClosesSilently(t *testing.T) {
	cfg := quietConfig()
	cfg.AuthTimeout = 200 * time.Millisecond
	s := start(t, cfg)
	c := dial(t, s)
	c.expect(greeting)
	c.expectEOF()
}

// TestEventBeforeResponse: every 2nd response after login is preceded by
// an event, so a client must skip events between request and response.
func TestEventBeforeResponse(t *testing.T) {
	cfg := quietConfig()
	cfg.EventBeforeResponse = 2
	cfg.SystemName = "node1"
	s := start(t, cfg)
	c := dial(t, s)
	c.login()
	c.send("Action: Ping\r\nActionID: p1\r\n\r\n")
	c.expect("Response: Success\r\nActionID: p1\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n")
	c.send("Action: Ping\r\nActionID: p2\r\n\r\n")
	ev := c.msg()
	if !strings.HasPrefix(ev, "Event: ") || !strings.Contains(ev, "\r\nSystemName: node1\r\n") {
		t.Errorf("want an event before the 2nd response, got %q", ev)
	}
	c.expect("Response: Success\r\nActionID: p2\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n")
}

// TestEventsInterleaved: with fast background events, every message still
// arrives whole and each response can be found by its ActionID.
func TestEventsInterleaved(t *testing.T) {
	cfg := quietConfig()
	cfg.EventInterval = 2 * time.Millisecond
	cfg.EventBeforeResponse = 3
	s := start(t, cfg)
	c := dial(t, s)
	c.login()
	events := 0
	for i := range 30 {
		id := fmt.Sprintf("ping-%d", i)
		c.send("Action: Ping\r\nActionID: " + id + "\r\n\r\n")
		for {
			m := c.msg()
			lines := strings.Split(strings.TrimSuffix(m, "\r\n\r\n"), "\r\n")
			for _, l := range lines {
				if name, _, ok := strings.Cut(l, ": "); !ok || name == "" || strings.ContainsAny(name, " \r\n") {
					t.Fatalf("malformed line %q in %q", l, m)
				}
			}
			if strings.HasPrefix(m, "Event: ") {
				if lines[1] != "Privilege: system,all" && lines[1] != "Privilege: call,all" && lines[1] != "Privilege: dialplan,all" {
					t.Fatalf("event privilege line %q", lines[1])
				}
				events++
				continue
			}
			want := "Response: Success\r\nActionID: " + id + "\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n"
			if m != want {
				t.Fatalf("response %q, want %q", m, want)
			}
			break
		}
		time.Sleep(3 * time.Millisecond)
	}
	if events < 10 {
		t.Errorf("only %d events interleaved, want at least 10", events)
	}
}

func TestEmit(t *testing.T) {
	cfg := quietConfig()
	cfg.SystemName = "node1"
	s := start(t, cfg)
	anon := dial(t, s)
	anon.expect(greeting)
	c := dial(t, s)
	c.login()
	n := s.Emit(Event{Name: "UserEvent", Class: "user", Headers: []Header{{"UserEvent", "pbxlab"}, {"Note", "a\r\nb"}}})
	if n != 1 {
		t.Errorf("Emit reached %d sessions, want 1", n)
	}
	c.expect("Event: UserEvent\r\nPrivilege: user,all\r\nSystemName: node1\r\nUserEvent: pbxlab\r\nNote: ab\r\n\r\n")
	anon.expectSilence(100 * time.Millisecond)
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault Fault
		check func(t *testing.T, s *Server, c *client)
	}{
		{FaultRefuseLogin, func(t *testing.T, s *Server, c *client) {
			c.expect(greeting)
			c.send(loginReq)
			c.expect("Response: Error\r\nActionID: 1\r\nMessage: Authentication failed\r\n\r\n")
			c.expectEOF()
			if s.Logins() != 0 || s.FailedLogins() != 1 {
				t.Errorf("logins %d, failed %d; want 0, 1", s.Logins(), s.FailedLogins())
			}
		}},
		{FaultNoGreeting, func(t *testing.T, s *Server, c *client) {
			c.expectSilence(200 * time.Millisecond)
			c.send(loginReq)
			c.expectSilence(200 * time.Millisecond)
			if s.Sessions() != 1 {
				t.Errorf("Sessions() = %d, want the connection held open", s.Sessions())
			}
		}},
		{FaultStallMidResponse, func(t *testing.T, s *Server, c *client) {
			c.login()
			c.send("Action: Ping\r\nActionID: 2\r\n\r\n")
			full := "Response: Success\r\nActionID: 2\r\nPing: Pong\r\nTimestamp: 1700000000.123456\r\n\r\n"
			c.expect(full[:len(full)/2])
			c.expectSilence(300 * time.Millisecond)
		}},
		{FaultGarbage, func(t *testing.T, s *Server, c *client) {
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			line, err := c.br.ReadString('\n')
			if err != nil || len(line) < 64 || strings.HasPrefix(line, "Asterisk") {
				t.Errorf("garbage %q, %v", line, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s := start(t, quietConfig())
			s.SetFault(tc.fault)
			tc.check(t, s, dial(t, s))
			// Clearing the fault restores service for new connections.
			s.SetFault(FaultNone)
			c := dial(t, s)
			c.login()
		})
	}
}

func TestParseFault(t *testing.T) {
	for f := FaultNone; f <= FaultGarbage; f++ {
		got, err := ParseFault(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFault(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFault("melt"); err == nil {
		t.Error("ParseFault accepted an unknown name")
	}
}

func TestSetCore(t *testing.T) {
	s := start(t, quietConfig())
	s.SetCore(CoreState{CurrentCalls: 250, ProcessedCalls: 9000})
	c := dial(t, s)
	c.login()
	c.send("Action: CoreStatus\r\n\r\n")
	c.expect("Response: Success\r\nCoreStartupDate: 2023-11-14\r\nCoreStartupTime: 21:13:20\r\n" +
		"CoreReloadDate: 2023-11-14\r\nCoreReloadTime: 22:03:20\r\nCoreCurrentCalls: 250\r\nCoreProcessedCalls: 9000\r\n\r\n")
}

func TestCloseDropsSessions(t *testing.T) {
	s := start(t, quietConfig())
	c := dial(t, s)
	c.login()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return")
	}
	c.expectEOF()
	if _, err := net.DialTimeout("tcp", c.c.RemoteAddr().String(), time.Second); err == nil {
		t.Error("still accepting after Close")
	}
}

func TestListenAndServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := quietConfig()
	cfg.Addr = addr
	errc := make(chan error, 1)
	go func() { errc <- ListenAndServe(ctx, cfg) }()
	var c net.Conn
	for i := 0; ; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); line != greeting {
		t.Errorf("greeting %q, %v", line, err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe returned %v after cancel", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}
