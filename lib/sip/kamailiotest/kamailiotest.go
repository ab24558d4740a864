package kamailiotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need fails or skips the test when what it needs is missing: skip on a
// developer's machine, fail under CI=true, where a test must not pass by
// not running.
func Need(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", what)
	}
	t.Skipf("%s", what)
}

// Path finds kamailio.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kamailio")
	if err != nil {
		for _, c := range []string{"/usr/sbin/kamailio", "/usr/local/sbin/kamailio"} {
			if _, e := os.Stat(c); e == nil {
				p, err = c, nil
				break
			}
		}
	}
	Need(t, "kamailio is not installed (Debian package kamailio)", err == nil)
	return p
}

// RouteOK answers OPTIONS 200 OK and anything else 404, the brief's
// reference configuration.
const RouteOK = `
	if ($rm == "OPTIONS") {
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("404", "Not Here");
`

// RouteByUser answers by the Request-URI's user: "missing" gets 404 Not
// Found, "pipe" a 503 whose reason phrase holds a '|' (which must never
// reach perfdata), anyone else 200 OK.
const RouteByUser = `
	if ($rU == "missing") {
		sl_send_reply("404", "Not Found");
		exit;
	}
	if ($rU == "pipe") {
		sl_send_reply("503", "Busy | try=later");
		exit;
	}
	sl_send_reply("200", "OK");
`

// Server is a running Kamailio.
type Server struct {
	Port int
	Addr string // 127.0.0.1:port, UDP and TCP
	Dir  string
}

// Log is what Kamailio wrote so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "kamailio.log"))
	return string(b)
}

// Start runs Kamailio in the foreground on a free port of 127.0.0.1 (UDP
// and TCP) with route as its request_route, and waits until it answers.
// The test's cleanup kills its whole process group (it forks children).
func Start(t testing.TB, route string) *Server {
	t.Helper()
	bin := Path(t)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := filepath.Join(dir, "kamailio.cfg")
	text := fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
listen=udp:%[1]s
listen=tcp:%[1]s
loadmodule "sl.so"
loadmodule "pv.so"

request_route {
%[2]s
}
`, addr, route)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg, "-Y", run).CombinedOutput(); err != nil {
		t.Fatalf("kamailio -c -f %s: %v\n%s", cfg, err, out)
	}
	s := &Server{Port: port, Addr: addr, Dir: dir}
	// A file, not a pipe: children that outlive the creator for a moment
	// would hold a pipe open and Wait with it.
	logf, err := os.Create(filepath.Join(dir, "kamailio.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// -DD: no daemon, the creator stays our child; -E: log to stderr;
	// -m/-M: small shared and private memory, as a test needs.
	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-m", "32", "-M", "8",
		"-Y", run, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kamailio: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Children that outlived the creator are in its group still.
		syscall.Kill(-pgid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("kamailio log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("kamailio exited at start:\n%s", s.Log())
		default:
		}
		if err := answers(addr); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("kamailio on %s does not answer OPTIONS: %v\n%s", addr, err, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// answers sends one raw OPTIONS over UDP and TCP and wants any SIP answer
// on both.
func answers(addr string) error {
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		la := c.LocalAddr().String()
		req := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
			"Via: SIP/2.0/" + strings.ToUpper(network) + " " + la + ";branch=z9hG4bKkamailiotest" + strconv.Itoa(time.Now().Nanosecond()) + "\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=kt\r\nTo: <sip:" + addr + ">\r\n" +
			"Call-ID: kamailiotest-" + strconv.FormatInt(time.Now().UnixNano(), 10) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = c.Write([]byte(req))
		buf := make([]byte, 2048)
		var n int
		if err == nil {
			n, err = c.Read(buf)
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", network, err)
		}
		if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			return fmt.Errorf("%s: not a SIP answer: %q", network, buf[:n])
		}
	}
	return nil
}

// FreePort returns a port of 127.0.0.1 that is free for both UDP and TCP
// a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return 0
}

// ClosedPort returns a port of 127.0.0.1 nothing listens on (UDP and TCP).
func ClosedPort(t testing.TB) int { return FreePort(t) }

// Datagram is one request a tarpit received.
type Datagram struct {
	At   time.Time
	From string
	Data []byte
}

// UDPTarpit reads SIP requests and never answers.
type UDPTarpit struct {
	Addr string
	mu   sync.Mutex
	got  []Datagram
}

// Received lists what came in so far.
func (p *UDPTarpit) Received() []Datagram {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Datagram(nil), p.got...)
}

// StartUDPTarpit listens on 127.0.0.1 until the test ends.
func StartUDPTarpit(t testing.TB) *UDPTarpit {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &UDPTarpit{Addr: c.LocalAddr().String()}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got = append(p.got, Datagram{At: time.Now(), From: from.String(), Data: append([]byte(nil), buf[:n]...)})
			p.mu.Unlock()
		}
	}()
	return p
}

// TCPTarpit accepts connections, reads what comes and never answers.
type TCPTarpit struct {
	Addr string
	mu   sync.Mutex
	got  bytes.Buffer
	from []string
}

// Received is everything read so far, and the peers' addresses.
func (p *TCPTarpit) Received() (string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String(), append([]string(nil), p.from...)
}

// StartTCPTarpit listens on 127.0.0.1 until the test ends.
func StartTCPTarpit(t testing.TB) *TCPTarpit {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPTarpit{Addr: l.Addr().String()}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			p.mu.Lock()
			p.from = append(p.from, c.RemoteAddr().String())
			p.mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					p.mu.Lock()
					p.got.Write(buf[:n])
					p.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}
