package ami

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// act is one step of a scripted AMI server: read a request, write bytes,
// wait, go silent or hang up. The script replays a byte transcript, so
// what the check is tested against is exactly what a given Asterisk
// writes, splits and delays included.
type act struct {
	expect string        // read one request; its Action must be this
	send   string        // write this; "$ID" becomes the last request's ActionID
	pause  time.Duration // sleep first
	split  int           // write send[:split], pause again, then the rest
	hang   bool          // say nothing more until the client goes
	close  bool          // hang up
}

func expect(action string) act { return act{expect: action} }
func send(s string) act        { return act{send: s} }
func pause(d time.Duration) act {
	return act{pause: d}
}
func sendSplit(s string, at int, d time.Duration) act { return act{send: s, split: at, pause: d} }
func hang() act                                       { return act{hang: true} }
func hangUp() act                                     { return act{close: true} }

// request is what the fake received: headers in order.
type request struct {
	headers [][2]string
	raw     string
}

func (r request) get(name string) string {
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// fake is a scripted AMI server on 127.0.0.1:0 for one connection at a
// time; every connection replays the script.
type fake struct {
	t      *testing.T
	l      net.Listener
	script []act

	mu       sync.Mutex
	received []request
	mismatch []string
	gone     chan struct{} // gets a value when a client's connection ended
}

func startFake(t *testing.T, script ...act) *fake {
	return startFakeTLS(t, nil, script...)
}

func startFakeTLS(t *testing.T, cfg *tls.Config, script ...act) *fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	f := &fake{t: t, l: l, script: script, gone: make(chan struct{}, 16)}
	go f.serve()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, m := range f.mismatch {
			t.Errorf("fake AMI server: %s", m)
		}
	})
	return f
}

func (f *fake) port() string {
	_, p, _ := net.SplitHostPort(f.l.Addr().String())
	return p
}

func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.received...)
}

// waitGone asserts that the client closed its connection soon after the
// check returned: no session is left behind.
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
		go f.session(c)
	}
}

func (f *fake) session(c net.Conn) {
	defer func() { f.gone <- struct{}{} }()
	defer c.Close()
	br := bufio.NewReader(c)
	id := ""
	for _, a := range f.script {
		if a.expect != "" {
			req, err := readRequest(br)
			if err != nil {
				return // the client gave up first: its test says whether it should have
			}
			f.mu.Lock()
			f.received = append(f.received, req)
			if !strings.EqualFold(req.get("Action"), a.expect) {
				f.mismatch = append(f.mismatch, fmt.Sprintf("expected Action %s, got %q", a.expect, req.raw))
			}
			f.mu.Unlock()
			id = req.get("ActionID")
			continue
		}
		if a.hang {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				if _, err := br.ReadByte(); err != nil {
					return
				}
			}
		}
		if a.close {
			return
		}
		b := strings.ReplaceAll(a.send, "$ID", id)
		if a.split > 0 && a.split < len(b) {
			if _, err := c.Write([]byte(b[:a.split])); err != nil {
				return
			}
			b = b[a.split:]
		}
		if a.pause > 0 {
			time.Sleep(a.pause)
		}
		if b != "" {
			if _, err := c.Write([]byte(b)); err != nil {
				return
			}
		}
	}
	// Script done: wait for the client to hang up.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, err := br.ReadByte(); err != nil {
			return
		}
	}
}

func readRequest(br *bufio.Reader) (request, error) {
	var r request
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return r, err
		}
		r.raw += line
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(r.headers) == 0 {
				continue
			}
			return r, nil
		}
		k, v, _ := strings.Cut(line, ":")
		r.headers = append(r.headers, [2]string{k, strings.TrimSpace(v)})
	}
}

// Transcripts. Field order and texts follow main/manager.c of each
// Asterisk branch; $ID is the ActionID the client sent.

const (
	greeting13 = "Asterisk Call Manager/2.10.6\r\n"
	greeting18 = "Asterisk Call Manager/7.0.3\r\n"
	greeting20 = "Asterisk Call Manager/9.0.0\r\n"

	loginOK          = "Response: Success\r\nActionID: $ID\r\nMessage: Authentication accepted\r\n\r\n"
	loginOKNoMessage = "Response: Success\r\nActionID: $ID\r\n\r\n"
	loginFailed      = "Response: Error\r\nActionID: $ID\r\nMessage: Authentication failed\r\n\r\n"
	goodbye          = "Response: Goodbye\r\nActionID: $ID\r\nMessage: Thanks for all the fish.\r\n\r\n"

	fullyBooted13 = "Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
	fullyBooted20 = "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 120\r\nLastReload: 60\r\nStatus: Fully Booted\r\n\r\n"
	peerStatus    = "Event: PeerStatus\r\nPrivilege: system,all\r\nSystemName: node1\r\nChannelType: PJSIP\r\nPeer: PJSIP/1001\r\nPeerStatus: Reachable\r\n\r\n"
	// An event with headers goami2's parser refuses (Asterisk 1.8's
	// ChanVariable(chan) form): skipped without being parsed.
	oddEvent = "Event: Newexten\r\nPrivilege: dialplan,all\r\nChanVariable(SIP/1001-00000001): CDR(linkedid)=1700000000.1\r\nAppData: \r\n\r\n"
	// A response to some other ActionID, as a proxy or a confused
	// server might send.
	otherResponse = "Response: Success\r\nActionID: somebody-else-7\r\nMessage: not yours\r\n\r\n"
)

// pong is Ping's response as Asterisk 13 to 22 write it (action_ping):
// no Message header.
func pong(now time.Time) string {
	return fmt.Sprintf("Response: Success\r\nActionID: $ID\r\nPing: Pong\r\nTimestamp: %d.%06d\r\n\r\n", now.Unix(), now.Nanosecond()/1000)
}

// coreStatus is action_corestatus's response; dates in local time.
func coreStatus(calls int, started, reloaded time.Time) string {
	s, r := started.Local(), reloaded.Local()
	return "Response: Success\r\nActionID: $ID\r\n" +
		"CoreStartupDate: " + s.Format("2006-01-02") + "\r\nCoreStartupTime: " + s.Format("15:04:05") + "\r\n" +
		"CoreReloadDate: " + r.Format("2006-01-02") + "\r\nCoreReloadTime: " + r.Format("15:04:05") + "\r\n" +
		"CoreCurrentCalls: " + strconv.Itoa(calls) + "\r\nCoreProcessedCalls: 4711\r\n\r\n"
}

// healthy is a whole good session in the style of the given greeting,
// with the given login response and events (may be "") after login and
// before each response.
func healthy(greeting, login, afterLogin, before string, calls int, started time.Time) []act {
	now := time.Now()
	return []act{
		send(greeting),
		expect("Login"), send(login + afterLogin),
		expect("Ping"), send(before + pong(now)),
		expect("CoreStatus"), send(before + coreStatus(calls, started, started.Add(time.Minute))),
		expect("Logoff"), send(goodbye), hangUp(),
	}
}
