package ntptime

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facebook/time/ntp/chrony"

	"pbxha/lib/plugin"
)

func TestTrackingStatus(t *testing.T) {
	cases := []struct {
		name string
		in   chrony.Tracking
		want LocalStatus
	}{
		{"synchronised to a server", chrony.Tracking{RefID: 0xC0000201, IPAddr: net.IPv4(192, 0, 2, 1), Stratum: 3, CurrentCorrection: 1.5e-5},
			LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, Stratum: 3, Offset: 1.5e-5, Reference: "192.0.2.1"}},
		{"not synchronised", chrony.Tracking{LeapStatus: 3, IPAddr: nil},
			LocalStatus{Daemon: "chronyd", HasTracking: true, Leap: 3, Reference: ""}},
		{"local stratum", chrony.Tracking{RefID: 0x7F7F0101, Stratum: 8},
			LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, FreeRunning: true, Stratum: 8, Reference: "its local clock"}},
		{"reference clock", chrony.Tracking{RefID: 0x47505300, Stratum: 1, IPAddr: net.IPv4zero},
			LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, Stratum: 1, Reference: "GPS"}},
		{"leap second pending", chrony.Tracking{RefID: 0xC0000201, IPAddr: net.IPv4(192, 0, 2, 1), Stratum: 2, LeapStatus: 1},
			LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, Stratum: 2, Leap: 1, Reference: "192.0.2.1"}},
	}
	for _, tc := range cases {
		if got := trackingStatus(tc.in); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func refusedUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// withDefaultChrony points the default chronyd lookup at addrs for one test.
func withDefaultChrony(t *testing.T, addrs ...string) {
	old := defaultChrony
	defaultChrony = addrs
	t.Cleanup(func() { defaultChrony = old })
}

func TestReadLocalFallsBackToTimesyncd(t *testing.T) {
	noSocket := filepath.Join(t.TempDir(), "chronyd.sock")
	withDefaultChrony(t, noSocket, refusedUDP(t))

	synced := t.TempDir()
	if err := os.WriteFile(filepath.Join(synced, "synchronized"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir string
		state     plugin.State
		summary   string
	}{
		{"timesyncd synchronised", synced, plugin.OK, "local systemd-timesyncd: synchronised"},
		{"timesyncd not yet", t.TempDir(), plugin.Warning, "local clock not synchronised (systemd-timesyncd)"},
		{"no daemon at all", filepath.Join(t.TempDir(), "absent"), plugin.Unknown, "no local time daemon found (chronyd, systemd-timesyncd)"},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st := ReadLocal(ctx, LocalOptions{TimesyncDir: tc.dir})
		cancel()
		r := EvaluateLocal(st, policy())
		if r.State != tc.state || r.Summary != tc.summary {
			t.Errorf("%s: %s %q, want %s %q (%+v)", tc.name, r.State, r.Summary, tc.state, tc.summary, st)
		}
	}
}

// A chronyd that is there but does not answer is not "absent": no
// fallback, UNKNOWN naming what was asked.
func TestReadLocalSilentChronyd(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	synced := t.TempDir()
	os.WriteFile(filepath.Join(synced, "synchronized"), nil, 0o644)

	withDefaultChrony(t, filepath.Join(t.TempDir(), "chronyd.sock"), silent.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := EvaluateLocal(ReadLocal(ctx, LocalOptions{TimesyncDir: synced}), policy())
	want := "local chronyd: " + silent.LocalAddr().String() + ": timed out"
	if r.State != plugin.Unknown || r.Summary != want {
		t.Fatalf("%s %q, want %q", r.State, r.Summary, want)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r = EvaluateLocal(ReadLocal(ctx, LocalOptions{Chrony: silent.LocalAddr().String(), TimesyncDir: synced}), policy())
	want = "local chronyd at " + silent.LocalAddr().String() + ": timed out"
	if r.State != plugin.Unknown || r.Summary != want {
		t.Fatalf("%s %q, want %q", r.State, r.Summary, want)
	}
}

// An explicit --chrony never falls back: the admin said chronyd is there.
func TestReadLocalExplicitChronyAbsent(t *testing.T) {
	synced := t.TempDir()
	os.WriteFile(filepath.Join(synced, "synchronized"), nil, 0o644)
	for _, addr := range []string{refusedUDP(t), filepath.Join(t.TempDir(), "chronyd.sock")} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r := EvaluateLocal(ReadLocal(ctx, LocalOptions{Chrony: addr, TimesyncDir: synced}), policy())
		cancel()
		if r.State != plugin.Unknown || !strings.HasPrefix(r.Summary, "local chronyd at "+addr+": ") {
			t.Errorf("%s: %s %q", addr, r.State, r.Summary)
		}
	}
}
