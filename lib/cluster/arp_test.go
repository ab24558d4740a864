package cluster

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	ourMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	peerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x12}
	vmacMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	vipAddr  = netip.MustParseAddr("192.0.2.10")
	nodeAddr = netip.MustParseAddr("192.0.2.12")
)

func arpFrame(t *testing.T, op arp.Operation, srcMAC net.HardwareAddr, srcIP netip.Addr, dstMAC net.HardwareAddr, dstIP netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, srcMAC, srcIP, dstMAC, dstIP)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := p.MarshalBinary()
	f := ethernet.Frame{Destination: dstMAC, Source: srcMAC, EtherType: ethernet.EtherTypeARP, Payload: pb}
	if op == arp.OperationRequest {
		f.Destination = ethernet.Broadcast
	}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClaim(t *testing.T) {
	own := []net.HardwareAddr{ourMAC, vmacMAC}
	ipv4Frame := func() []byte {
		f := ethernet.Frame{Destination: ourMAC, Source: peerMAC, EtherType: ethernet.EtherTypeIPv4, Payload: make([]byte, 40)}
		b, _ := f.MarshalBinary()
		return b
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"peer answers for the VIP", arpFrame(t, arp.OperationReply, peerMAC, vipAddr, ourMAC, netip.IPv4Unspecified()), peerMAC},
		{"peer announces the VIP (gratuitous)", arpFrame(t, arp.OperationRequest, peerMAC, vipAddr, zeroMAC, vipAddr), peerMAC},
		{"our kernel answers for the VIP", arpFrame(t, arp.OperationReply, ourMAC, vipAddr, peerMAC, netip.IPv4Unspecified()), nil},
		{"our other own MAC answers", arpFrame(t, arp.OperationReply, vmacMAC, vipAddr, peerMAC, netip.IPv4Unspecified()), nil},
		{"our own probe echoed back", arpFrame(t, arp.OperationRequest, ourMAC, netip.IPv4Unspecified(), zeroMAC, vipAddr), nil},
		{"another host's probe only asks", arpFrame(t, arp.OperationRequest, peerMAC, netip.IPv4Unspecified(), zeroMAC, vipAddr), nil},
		{"peer answers for its own address", arpFrame(t, arp.OperationReply, peerMAC, nodeAddr, ourMAC, vipAddr), nil},
		{"not ARP", ipv4Frame(), nil},
		{"truncated", arpFrame(t, arp.OperationReply, peerMAC, vipAddr, ourMAC, nodeAddr)[:20], nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := claim(tc.frame, vipAddr, own)
			if ok != (tc.want != nil) || got.String() != tc.want.String() {
				t.Fatalf("claim = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

func FuzzClaim(f *testing.F) {
	t := &testing.T{}
	f.Add(arpFrame(t, arp.OperationReply, peerMAC, vipAddr, ourMAC, netip.IPv4Unspecified()))
	f.Add(arpFrame(t, arp.OperationRequest, ourMAC, netip.IPv4Unspecified(), zeroMAC, vipAddr))
	f.Fuzz(func(t *testing.T, b []byte) {
		mac, ok := claim(b, vipAddr, []net.HardwareAddr{ourMAC})
		if ok && (len(mac) == 0 || mac.String() == ourMAC.String()) {
			t.Fatalf("claim by %v", mac)
		}
	})
}

// fakeConn is a net.PacketConn of Ethernet frames: it records what is
// written and, for each probe, hands back the replies answer makes.
type fakeConn struct {
	mu       sync.Mutex
	written  [][]byte
	answer   func(probe []byte) [][]byte
	queue    chan []byte
	deadline time.Time
	changed  chan struct{}
}

func newFakeConn(answer func([]byte) [][]byte) *fakeConn {
	return &fakeConn{answer: answer, queue: make(chan []byte, 64), changed: make(chan struct{}, 1)}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl := c.deadline
		c.mu.Unlock()
		var timer <-chan time.Time
		if !dl.IsZero() {
			timer = time.After(time.Until(dl))
		}
		select {
		case f := <-c.queue:
			return copy(b, f), nil, nil
		case <-timer:
			return 0, nil, timeoutErr{}
		case <-c.changed:
		}
	}
}

func (c *fakeConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, append([]byte(nil), b...))
	c.mu.Unlock()
	c.queue <- append([]byte(nil), b...) // a packet socket sees its own frames
	if c.answer != nil {
		for _, r := range c.answer(b) {
			c.queue <- r
		}
	}
	return len(b), nil
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return nil }
func (c *fakeConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func TestDetectProbesAndListens(t *testing.T) {
	// The peer holds the VIP: it answers a probe to the prober's MAC.
	peerHolds := func(t *testing.T) func([]byte) [][]byte {
		return func(probe []byte) [][]byte {
			return [][]byte{arpFrame(t, arp.OperationReply, peerMAC, vipAddr, ourMAC, netip.IPv4Unspecified())}
		}
	}
	ourKernelOnly := func(t *testing.T) func([]byte) [][]byte {
		return func([]byte) [][]byte {
			return [][]byte{arpFrame(t, arp.OperationReply, ourMAC, vipAddr, ourMAC, netip.IPv4Unspecified())}
		}
	}
	for _, tc := range []struct {
		name   string
		answer func(*testing.T) func([]byte) [][]byte
		found  bool
		probes int // at least
	}{
		{"peer holds the VIP", peerHolds, true, 1},
		{"only we answer", ourKernelOnly, false, dadProbes},
		{"silence", func(*testing.T) func([]byte) [][]byte { return nil }, false, dadProbes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeConn(tc.answer(t))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			mac, found, err := detect(ctx, c, ourMAC, vipAddr, []net.HardwareAddr{ourMAC})
			if err != nil || found != tc.found {
				t.Fatalf("detect = %v, %v, %v; want found=%v", mac, found, err, tc.found)
			}
			if found && mac.String() != peerMAC.String() {
				t.Fatalf("found %v, want %v", mac, peerMAC)
			}
			if !found && time.Since(t0) < 250*time.Millisecond {
				t.Fatalf("gave up after %v, before the window ended", time.Since(t0))
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.written) < tc.probes {
				t.Fatalf("sent %d probes, want at least %d", len(c.written), tc.probes)
			}
			// Every probe is RFC 5227's: broadcast, sender IP 0.0.0.0, our MAC,
			// target hardware address zero, target IP the VIP.
			var f ethernet.Frame
			var p arp.Packet
			if err := f.UnmarshalBinary(c.written[0]); err != nil {
				t.Fatal(err)
			}
			if err := p.UnmarshalBinary(f.Payload); err != nil {
				t.Fatal(err)
			}
			if f.Destination.String() != ethernet.Broadcast.String() || p.Operation != arp.OperationRequest ||
				p.SenderIP != netip.IPv4Unspecified() || p.SenderHardwareAddr.String() != ourMAC.String() ||
				p.TargetHardwareAddr.String() != zeroMAC.String() || p.TargetIP != vipAddr {
				t.Fatalf("probe is not an RFC 5227 probe: %+v to %v", p, f.Destination)
			}
		})
	}
}

func TestDetectCancelled(t *testing.T) {
	c := newFakeConn(nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	_, found, err := detect(ctx, c, ourMAC, vipAddr, []net.HardwareAddr{ourMAC})
	if !errors.Is(err, context.Canceled) || found {
		t.Fatalf("detect after cancel: %v, %v", found, err)
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Fatalf("cancel took %v (the default window is %v)", d, DefaultDADWait)
	}
}

// TestDetectDuplicateOnVeth runs real ARP between two throwaway
// namespaces joined by a veth pair: "us" (tel0, 192.0.2.201) and "peer"
// (192.0.2.202).
func TestDetectDuplicateOnVeth(t *testing.T) {
	needRoot(t)
	us := tempNetns(t, "us")
	peer := tempNetns(t, "peer")
	ipCmd(t, "-n", us, "link", "add", "tel0", "type", "veth", "peer", "name", "tel0", "netns", peer)
	ipCmd(t, "-n", us, "addr", "add", "192.0.2.201/24", "dev", "tel0")
	ipCmd(t, "-n", peer, "addr", "add", "192.0.2.202/24", "dev", "tel0")
	ipCmd(t, "-n", us, "link", "set", "tel0", "up")
	ipCmd(t, "-n", peer, "link", "set", "tel0", "up")
	out, err := exec.Command("ip", "-n", peer, "-br", "link", "show", "tel0").Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		t.Fatalf("ip -br link: %q", out)
	}
	peerHW := fields[2]

	enterNetns(t, us)
	dad := func(wantFound bool, wantMAC string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		mac, found, err := DetectDuplicate(ctx, "tel0", vipAddr, nil)
		if err != nil || found != wantFound || (found && mac.String() != wantMAC) {
			t.Fatalf("DetectDuplicate = %v, %v, %v; want found=%v %s", mac, found, err, wantFound, wantMAC)
		}
	}
	dad(false, "") // nobody has it
	vip := netip.MustParsePrefix("192.0.2.10/24")
	if err := AddVIP("tel0", vip); err != nil {
		t.Fatal(err)
	}
	// The peer remembers the VIP at some MAC. A request with sender IP =
	// VIP would overwrite that entry (once it is older than the kernel's
	// locktime, 1 s); the probes carry 0.0.0.0 and must leave it alone:
	// asking must not move traffic.
	ipCmd(t, "-n", peer, "neigh", "replace", "192.0.2.10", "lladdr", "02:00:00:00:00:77", "dev", "tel0", "nud", "stale")
	time.Sleep(1100 * time.Millisecond)
	dad(false, "") // only we have it: our kernel's answers do not count
	neigh, _ := exec.Command("ip", "-n", peer, "neigh", "show", "192.0.2.10").CombinedOutput()
	if !strings.Contains(string(neigh), "02:00:00:00:00:77") {
		t.Fatalf("the probes changed the peer's ARP cache: %s", neigh)
	}
	ipCmd(t, "-n", peer, "addr", "add", "192.0.2.10/24", "dev", "tel0")
	dad(true, peerHW) // both have it: split brain
	if err := DelVIP("tel0", vip); err != nil {
		t.Fatal(err)
	}
	dad(true, peerHW) // only the peer has it

	for _, tc := range []struct {
		iface string
		ip    netip.Addr
		want  string
	}{
		{"eth9", vipAddr, `interface "eth9" not found`},
		{"lo", vipAddr, "has no Ethernet address"},
		{"tel0", netip.MustParseAddr("2001:db8::10"), "is not an IPv4 address"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, _, err := DetectDuplicate(ctx, tc.iface, tc.ip, nil)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DetectDuplicate(%s, %s): %v, want %q", tc.iface, tc.ip, err, tc.want)
		}
	}
}

// TestDetectDuplicateNeedsRawSocket: without CAP_NET_RAW the error says
// what is missing. Run as root, it drops to nobody in a child process.
func TestDetectDuplicateNeedsRawSocket(t *testing.T) {
	if os.Getenv("PBXHA_ARP_CHILD") == "1" {
		_, _, err := DetectDuplicate(context.Background(), "tel0", vipAddr, nil)
		if err == nil {
			os.Exit(0)
		}
		os.Stdout.WriteString(err.Error())
		os.Exit(0)
	}
	needRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	us := tempNetns(t, "cap")
	ipCmd(t, "-n", us, "link", "add", "tel0", "type", "veth", "peer", "name", "tel0p")
	ipCmd(t, "-n", us, "link", "set", "tel0", "up")
	cmd := exec.Command("ip", "netns", "exec", us, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		exe, "-test.run=^TestDetectDuplicateNeedsRawSocket$")
	cmd.Env = append(os.Environ(), "PBXHA_ARP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "permission denied (needs root or CAP_NET_RAW)") {
		t.Fatalf("as nobody: %q", out)
	}
}
