package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// The VIP and ARP tests work on links in throwaway network namespaces of
// their own (never the host's, never the lab's), named after this process
// so that parallel runs do not meet.

// needRoot skips without root, except under CI=true where a test that
// cannot run is a failure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and the test needs root (network namespaces)")
	}
	t.Skip("needs root (network namespaces)")
}

// ipCmd runs ip(8) for the test's setup.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// tempNetns creates a named namespace that is deleted at cleanup.
func tempNetns(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("pbxvip-test-%d-%s", os.Getpid(), suffix)
	exec.Command("ip", "netns", "del", name).Run() // a leftover of a crashed run of the same pid
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// enterNetns moves the calling goroutine's thread into ns until cleanup.
// The test must not hand the work to other goroutines (t.Run included):
// they would run in the host's namespace.
func enterNetns(t *testing.T, ns string) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with the goroutine, so the
			// runtime never reuses it in the wrong namespace.
			t.Errorf("returning to the original namespace: %v", err)
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	})
}

func addrs(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show: %v: %s", err, out)
	}
	return string(out)
}

func TestVIPOnThrowawayLink(t *testing.T) {
	needRoot(t)
	ns := tempNetns(t, "vip")
	// A veth pair stands in for the NIC: this kernel may lack the dummy
	// driver, and the lab's links are veths too.
	ipCmd(t, "-n", ns, "link", "add", "tel0", "type", "veth", "peer", "name", "tel0p")
	ipCmd(t, "-n", ns, "link", "set", "tel0", "up")
	ipCmd(t, "-n", ns, "addr", "add", "192.0.2.11/24", "dev", "tel0")
	enterNetns(t, ns)

	vip := netip.MustParsePrefix("192.0.2.10/24")
	bound := func(want bool) {
		t.Helper()
		got, err := VIPBound("tel0", vip)
		if err != nil || got != want {
			t.Fatalf("VIPBound = %v, %v; want %v (addresses: %s)", got, err, want, addrs(t, ns, "tel0"))
		}
	}
	bound(false)
	for i := range 2 { // the second add is a no-op
		if err := AddVIP("tel0", vip); err != nil {
			t.Fatalf("AddVIP #%d: %v", i+1, err)
		}
	}
	bound(true)
	if n := strings.Count(addrs(t, ns, "tel0"), "192.0.2.10/24"); n != 1 {
		t.Fatalf("the VIP is bound %d times: %s", n, addrs(t, ns, "tel0"))
	}
	// The node's own address is not the VIP.
	if got, _ := VIPBound("tel0", netip.MustParsePrefix("192.0.2.12/24")); got {
		t.Fatal("192.0.2.12 reported bound")
	}
	for i := range 2 {
		if err := DelVIP("tel0", vip); err != nil {
			t.Fatalf("DelVIP #%d: %v", i+1, err)
		}
	}
	bound(false)
	if !strings.Contains(addrs(t, ns, "tel0"), "192.0.2.11/24") {
		t.Fatalf("DelVIP took the node's own address: %s", addrs(t, ns, "tel0"))
	}

	// Bound by hand with another prefix length: still bound, still removed.
	ipCmd(t, "-n", ns, "addr", "add", "192.0.2.10/32", "dev", "tel0")
	bound(true)
	if err := AddVIP("tel0", vip); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(addrs(t, ns, "tel0"), "192.0.2.10/24") {
		t.Fatal("AddVIP added a second copy of a VIP bound as /32")
	}
	if err := DelVIP("tel0", vip); err != nil {
		t.Fatal(err)
	}
	bound(false)

	for _, tc := range []struct {
		iface string
		vip   netip.Prefix
		want  string
	}{
		{"eth9", vip, `interface "eth9" not found on this node`},
		{"", vip, "no interface given"},
		{"tel0", netip.Prefix{}, "no VIP address given"},
	} {
		if _, err := VIPBound(tc.iface, tc.vip); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("VIPBound(%q, %v): %v, want %q", tc.iface, tc.vip, err, tc.want)
		}
		if err := AddVIP(tc.iface, tc.vip); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddVIP(%q, %v): %v, want %q", tc.iface, tc.vip, err, tc.want)
		}
		if err := DelVIP(tc.iface, tc.vip); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DelVIP(%q, %v): %v, want %q", tc.iface, tc.vip, err, tc.want)
		}
	}
}
