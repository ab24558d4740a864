package rsyncd

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// act is one step of a scripted rsync daemon: read a line, write bytes,
// wait, go silent or hang up. A script replays a byte transcript, so the
// check is tested against exactly what a given daemon writes, splits and
// delays included.
type act struct {
	expect    string        // read one line; it must start with this
	exact     bool          // ... or be exactly this
	read      bool          // a read step (expect may be "")
	send      string        // write this; "$CH" becomes the challenge
	challenge string        // the challenge "$CH" stands for
	auth      *authWant     // read the login line and check it
	pause     time.Duration // sleep first
	split     int           // write send[:split], pause again, then the rest
	hang      bool          // say nothing more until the client goes
	close     bool          // hang up
}

// authWant is the login the fake expects: the response a client with this
// password computes for the last challenge.
type authWant struct {
	user, password, digest string
}

func expect(prefix string) act { return act{expect: prefix, read: true} }
func expectLine(s string) act  { return act{expect: s, exact: true, read: true} }
func send(s string) act        { return act{send: s} }
func sendChallenge(ch string) act {
	return act{send: authReqd + ch + "\n", challenge: ch}
}
func expectAuth(user, password, digest string) act {
	return act{auth: &authWant{user, password, digest}}
}
func pause(d time.Duration) act                       { return act{pause: d} }
func sendSplit(s string, at int, d time.Duration) act { return act{send: s, split: at, pause: d} }
func hang() act                                       { return act{hang: true} }
func hangUp() act                                     { return act{close: true} }

// fake is a scripted daemon on 127.0.0.1:0. Connection i plays
// scripts[i], the last script for every later one.
type fake struct {
	l       net.Listener
	scripts [][]act

	mu       sync.Mutex
	conns    int
	received []string
	mismatch []string
	gone     chan struct{}
}

func startFake(t *testing.T, scripts ...[]act) *fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{l: l, scripts: scripts, gone: make(chan struct{}, 16)}
	go f.serve()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, m := range f.mismatch {
			t.Errorf("fake rsync daemon: %s", m)
		}
	})
	return f
}

func (f *fake) addr() string { return f.l.Addr().String() }

func (f *fake) port() string {
	_, p, _ := net.SplitHostPort(f.addr())
	return p
}

// lines returns what clients sent, one entry per line.
func (f *fake) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.received...)
}

func (f *fake) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// waitGone asserts that the client closed its connection: no session is
// left behind.
func (f *fake) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-f.gone:
	case <-time.After(3 * time.Second):
		t.Fatal("the client did not close its connection")
	}
}

func (f *fake) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		i := min(f.conns, len(f.scripts)-1)
		f.conns++
		f.mu.Unlock()
		go f.session(c, f.scripts[i])
	}
}

func (f *fake) bad(format string, args ...any) {
	f.mu.Lock()
	f.mismatch = append(f.mismatch, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fake) session(c net.Conn, script []act) {
	defer func() {
		c.Close()
		f.gone <- struct{}{}
	}()
	br := bufio.NewReader(c)
	read := func() (string, bool) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return "", false
		}
		line = strings.TrimSuffix(line, "\n")
		f.mu.Lock()
		f.received = append(f.received, line)
		f.mu.Unlock()
		return line, true
	}
	challenge := ""
	for _, a := range script {
		if a.pause > 0 && a.split == 0 {
			time.Sleep(a.pause)
		}
		switch {
		case a.read:
			line, ok := read()
			if !ok {
				f.bad("wanted a line %q, the client went", a.expect)
				return
			}
			if a.exact && line != a.expect || !strings.HasPrefix(line, a.expect) {
				f.bad("got %q, want a line %q (exact: %v)", line, a.expect, a.exact)
			}
		case a.auth != nil:
			line, ok := read()
			if !ok {
				f.bad("wanted a login line, the client went")
				return
			}
			want, err := AuthResponse(a.auth.user, a.auth.password, challenge, a.auth.digest)
			if err != nil {
				f.bad("%v", err)
			}
			if line != want {
				f.bad("login line %q, want %q", line, want)
			}
		case a.send != "":
			s := strings.ReplaceAll(a.send, "$CH", challenge)
			if a.challenge != "" {
				challenge = a.challenge
			}
			if a.split > 0 && a.split < len(s) {
				c.Write([]byte(s[:a.split]))
				time.Sleep(a.pause)
				s = s[a.split:]
			}
			if _, err := c.Write([]byte(s)); err != nil {
				return
			}
		case a.hang:
			_ = c.SetReadDeadline(time.Time{})
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		case a.close:
			return
		}
	}
	// Drain until the client goes, as a daemon waiting for more would.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}
