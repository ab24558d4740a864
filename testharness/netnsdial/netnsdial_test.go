package netnsdial

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestLiteralRefusesNames(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		ok            bool
	}{
		{"tcp", "127.0.0.1:3306", true},
		{"tcp", "[::1]:3306", true},
		{"udp", "192.0.2.10:5060", true},
		{"unix", "/tmp/x.sock", true},
		{"tcp", "localhost:3306", false},
		{"tcp", "127.0.0.1", false},
	} {
		err := literal(tc.network, tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("literal(%s, %s) = %v, want ok=%v", tc.network, tc.addr, err, tc.ok)
		}
	}
}

// needRoot skips without root, except under CI=true where the test must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to create network namespaces (CI=true: not skipping)")
		}
		t.Skip("needs root to create network namespaces")
	}
}

func TestDialInNamespace(t *testing.T) {
	needRoot(t)
	const ns = "pbxnd-t1"
	_ = exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}

	l, err := Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("echo " + line))
			c.Close()
		}
	}()
	addr := l.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dialer(ns)(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hi\n"))
	got, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if got != "echo hi\n" {
		t.Fatalf("echo through namespace socket = %q", got)
	}

	// The same address from the root namespace must not reach the listener:
	// otherwise Dial did not really enter the namespace. Holding the port in
	// the root namespace proves nothing else answers there.
	if rl, err := net.Listen("tcp", addr); err == nil {
		rl.Close()
		if c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			t.Fatalf("%s answered from the root namespace", addr)
		}
	} else if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("probing %s in the root namespace: %v", addr, err)
	}

	if _, err := DialContext(ctx, "pbxnd-no-such-ns", "tcp", addr); err == nil {
		t.Fatal("dialing into a missing namespace succeeded")
	}
}
