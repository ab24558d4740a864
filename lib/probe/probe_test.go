package probe

import (
	"bytes"
	"context"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestICMPLoopback(t *testing.T) {
	if os.Geteuid() != 0 && !UnprivilegedAllowed() {
		t.Skip("neither root nor a gid in ping_group_range")
	}
	// pro-bing logs to the standard logger by default; a plugin must not.
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)

	start := time.Now()
	r := Probe(context.Background(), loopback, Options{Method: ICMP, Count: 3, Interval: time.Second, Timeout: 500 * time.Millisecond})
	el := time.Since(start)
	if !r.Reachable || r.Sent != 3 || r.Received != 3 || r.Loss != 0 || r.Err != "" || r.RTT <= 0 || r.RTT > 100*time.Millisecond {
		t.Fatalf("%+v", r)
	}
	// Each probe goes out when the previous one is answered, not a second
	// later, and Probe returns with the last answer.
	if el > 200*time.Millisecond {
		t.Fatalf("took %v", el)
	}
	if logged.Len() > 0 {
		t.Fatalf("pro-bing logged: %q", logged.String())
	}
}

func TestICMPBothSocketKinds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to use both socket kinds")
	}
	// Root may always open a raw socket; a ping socket needs the sysctl, so
	// only test it where it allows us.
	for _, priv := range []bool{true, false} {
		if !priv && !UnprivilegedAllowed() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		sent, rtt, ok, err := pingOnce(ctx, loopback, 300*time.Millisecond, priv)
		cancel()
		if !sent || !ok || rtt <= 0 || err != nil {
			t.Fatalf("privileged=%v: sent %v ok %v rtt %v err %v", priv, sent, ok, rtt, err)
		}
	}
}

func TestPrivilegeChoiceFollowsSysctl(t *testing.T) {
	old := PingGroupRange
	defer func() { PingGroupRange = old }()
	dir := t.TempDir()
	PingGroupRange = filepath.Join(dir, "range")
	gid := os.Getegid()
	cases := []struct {
		text string
		want bool
	}{
		{"1\t0\n", false}, // Debian's default: nobody
		{"0\t2147483647\n", true},
		{"5000 5001", gid >= 5000 && gid <= 5001},
		{"garbage", false},
	}
	for _, c := range cases {
		os.WriteFile(PingGroupRange, []byte(c.text), 0o644)
		if got := UnprivilegedAllowed(); got != c.want {
			t.Errorf("%q: %v, want %v", c.text, got, c.want)
		}
	}
	os.Remove(PingGroupRange)
	if UnprivilegedAllowed() {
		t.Error("missing sysctl file: allowed")
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	open := ln.Addr().(*net.TCPAddr).Port
	// A listener that never accepts: the kernel still completes the
	// handshake, as for a frozen process.
	closed := closedPort(t)
	o := Options{Method: TCP, Count: 2, Interval: 10 * time.Millisecond, Timeout: 300 * time.Millisecond}

	o.Ports = []int{open}
	if r := Probe(context.Background(), loopback, o); !r.Reachable || r.Sent != 2 || r.Received != 2 || r.Loss != 0 {
		t.Fatalf("listening port: %+v", r)
	}
	// Refused is an answer: the host's kernel sent the RST.
	o.Ports = []int{closed}
	if r := Probe(context.Background(), loopback, o); !r.Reachable || r.Received != 2 {
		t.Fatalf("closed port: %+v", r)
	}
	o.Ports = []int{open, closed}
	start := time.Now()
	o.Interval = time.Second // answered rounds do not wait for it
	if r := Probe(context.Background(), loopback, o); r.Sent != 4 || r.Received != 4 || len(r.Detail) != 2 {
		t.Fatalf("two ports: %+v", r)
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Fatalf("two answered rounds took %v", el)
	}
	o.Ports = nil
	if r := Probe(context.Background(), loopback, o); r.Reachable || r.Err == "" || r.Loss != 100 {
		t.Fatalf("no ports: %+v", r)
	}
}

func TestBanner(t *testing.T) {
	greeter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer greeter.Close()
	go func() {
		for {
			c, err := greeter.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-test\r\n"))
			c.Close()
		}
	}()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: a frozen sshd
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	port := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
	o := Options{Method: Banner, Count: 2, Interval: 10 * time.Millisecond, Timeout: 150 * time.Millisecond}

	o.Ports = []int{port(greeter)}
	if r := Probe(context.Background(), loopback, o); !r.Reachable || r.Received != 2 {
		t.Fatalf("greeter: %+v", r)
	}
	start := time.Now()
	o.Ports = []int{port(silent)}
	r := Probe(context.Background(), loopback, o)
	if r.Reachable || r.Sent != 2 || r.Received != 0 || r.Loss != 100 || r.Err != "port "+strconv.Itoa(port(silent))+": connected, but no greeting within 150ms" {
		t.Fatalf("silent listener: %+v", r)
	}
	if el := time.Since(start); el > o.Budget()+100*time.Millisecond {
		t.Fatalf("silent listener took %v, budget %v", el, o.Budget())
	}
	// For Banner a refusal is a loss: nothing is there to greet. It comes
	// at once, yet the probes stay Interval apart: a burst of instant
	// errors must not decide a path is dead.
	o.Ports = []int{closedPort(t)}
	o.Count, o.Interval = 3, 60*time.Millisecond
	start = time.Now()
	if r := Probe(context.Background(), loopback, o); r.Reachable || r.Sent != 3 || r.Err != "port "+strconv.Itoa(o.Ports[0])+": connection refused" {
		t.Fatalf("closed port: %+v", r)
	}
	if el := time.Since(start); el < 120*time.Millisecond {
		t.Fatalf("three instant failures took only %v", el)
	}
}

func TestBothOneAnswerIsEnough(t *testing.T) {
	// TCP answers (refused), ICMP may or may not be allowed here: either
	// way Both is reachable and the counts add up.
	o := Options{Method: Both, Count: 2, Interval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond, Ports: []int{closedPort(t)}}
	r := Probe(context.Background(), loopback, o)
	if !r.Reachable || r.Sent < 2 || r.Received < 2 {
		t.Fatalf("%+v", r)
	}
}

func TestContextBoundsProbe(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := Options{Method: Banner, Count: 5, Interval: time.Second, Timeout: 5 * time.Second, Ports: []int{silent.Addr().(*net.TCPAddr).Port}}
	r := Probe(ctx, loopback, o)
	if el := time.Since(start); el > 400*time.Millisecond || r.Reachable {
		t.Fatalf("took %v: %+v", el, r)
	}
}

func TestProbeAllKeepsOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	targets := []netip.Addr{loopback, netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::ffff:127.0.0.3")}
	rs := ProbeAll(context.Background(), targets, Options{Method: TCP, Count: 1, Timeout: 200 * time.Millisecond, Ports: []int{port}})
	for i, r := range rs {
		if r.Target != targets[i].Unmap() {
			t.Fatalf("%d: %v", i, r.Target)
		}
	}
	// 127.0.0.1 listens; 127.0.0.2 refuses (loopback answers for all of
	// 127/8, the listener is bound to .1 only): both answered.
	if !rs[0].Reachable || !rs[1].Reachable {
		t.Fatalf("%+v", rs)
	}
}

func TestBudgetAndParse(t *testing.T) {
	if b := (Options{}).Budget(); b != 400*time.Millisecond {
		t.Fatalf("default budget %v", b)
	}
	if b := (Options{Count: 1, Timeout: time.Second}).Budget(); b != time.Second {
		t.Fatalf("budget %v", b)
	}
	for _, s := range []string{"icmp", "TCP", "both", "banner"} {
		if _, err := ParseMethod(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParseMethod("udp"); err == nil {
		t.Fatal("udp accepted")
	}
}

// When the sysctl says ping sockets are allowed but the kernel refuses one
// (the file lies here; in life a container's seccomp or a changed sysctl),
// Probe falls back to a raw socket.
func TestICMPFallsBackOnPermissionError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_NET_RAW for the fallback")
	}
	if UnprivilegedAllowed() {
		t.Skip("ping sockets are really allowed here: nothing to fall back from")
	}
	old := PingGroupRange
	defer func() { PingGroupRange = old }()
	PingGroupRange = filepath.Join(t.TempDir(), "range")
	os.WriteFile(PingGroupRange, []byte("0\t2147483647\n"), 0o644)
	r := Probe(context.Background(), loopback, Options{Count: 1, Timeout: 300 * time.Millisecond})
	if !r.Reachable || !r.Privileged {
		t.Fatalf("%+v", r)
	}
}
