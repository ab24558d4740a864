package peer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/peer/peertest"
	"pbxha/lib/probe"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, cfg *config.Config) *peer.Client {
	t.Helper()
	c, err := peer.Dial(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStateRoundTrip(t *testing.T) {
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := peertest.Start(t, peertest.Options{
		State:    cluster.State{Role: cluster.Master, Epoch: 7, Since: since, Reason: "failover: pbx_master_alive\nCRITICAL | x"},
		VIPBound: true,
	})
	c := dial(t, p.Config())
	r, err := c.State(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r.Node != "node2" || r.State == nil || r.State.Role != cluster.Master || r.State.Epoch != 7 || !r.State.Since.Equal(since) ||
		r.VIPBound == nil || !*r.VIPBound || r.VIP != "192.0.2.10/24" {
		t.Fatalf("state = %+v %+v", r, r.State)
	}
	// Text from the peer is cleaned before anyone prints it.
	if r.State.Reason != "failover: pbx_master_alive CRITICAL / x" {
		t.Errorf("reason %q not cleaned", r.State.Reason)
	}
	// The client sends the words only, never a binary path or shell text.
	if got := p.Lines(); !slices.Equal(got, []string{"state"}) {
		t.Errorf("sent %q", got)
	}
	// One connection carries several commands.
	v, err := c.Version(ctxT(t, 5*time.Second))
	if err != nil || !slices.Contains(v.Commands, "probe") {
		t.Errorf("version = %+v, %v", v, err)
	}
}

func TestStateRemoteError(t *testing.T) {
	p := peertest.Start(t, peertest.Options{})
	if err := os.Remove(p.StateFile); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Config())
	r, err := c.State(ctxT(t, 5*time.Second))
	var re *peer.RemoteError
	if !errors.As(err, &re) || re.Command != "state" || re.Node != "node2" || !strings.Contains(re.Message, "no state file") {
		t.Fatalf("State without a state file: %+v, %v", r, err)
	}
	if !strings.HasPrefix(err.Error(), "peer command state: node2 says: no state file ") {
		t.Errorf("error %q", err)
	}
	if r.VIPBound == nil || *r.VIPBound {
		t.Errorf("the VIP fields should come along: %+v", r)
	}
}

func TestStateFromANodeWithAnotherName(t *testing.T) {
	p := peertest.Start(t, peertest.Options{})
	cfg := p.Config()
	// This node believes the peer is "node3": two configs disagree.
	cfg.Nodes[1].Name = "node3"
	c := dial(t, cfg)
	_, err := c.State(ctxT(t, 5*time.Second))
	if err == nil || !strings.Contains(err.Error(), `says it is "node2", cluster.toml names it "node3"`) {
		t.Fatalf("State = %v", err)
	}
}

func TestTimeAndSkew(t *testing.T) {
	for _, ahead := range []time.Duration{0, 5 * time.Second, -90 * time.Minute} {
		srv := &peer.Server{Now: func() time.Time { return time.Now().Add(ahead) }}
		p := peertest.Start(t, peertest.Options{Server: srv})
		c := dial(t, p.Config())
		before := time.Now()
		remote, rtt, err := c.Time(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 || rtt > time.Since(before) {
			t.Errorf("rtt %v", rtt)
		}
		if d := remote.Sub(before.Add(ahead)); d < 0 || d > time.Since(before) {
			t.Errorf("remote time %v is %v off the expected", remote, d)
		}
		skew, rtt, err := c.Skew(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if d := skew - ahead; d.Abs() > rtt/2+time.Millisecond {
			t.Errorf("ahead %v: skew %v (rtt %v)", ahead, skew, rtt)
		}
	}
}

// Starting pbxha-peer takes time on a busy node (sshd, a shell, the Go
// runtime: hundreds of milliseconds on a loaded machine). The clock is
// read after that, so timing the whole command would put the peer ahead
// by half the start-up; the ping after Ready keeps it out.
func TestSkewExcludesStartUp(t *testing.T) {
	p := peertest.Start(t, peertest.Options{Server: &peer.Server{}, StartDelay: 400 * time.Millisecond})
	c := dial(t, p.Config())
	start := time.Now()
	skew, rtt, err := c.Skew(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 400*time.Millisecond {
		t.Fatalf("the start-up delay did not happen")
	}
	if rtt > 100*time.Millisecond || skew.Abs() > 50*time.Millisecond {
		t.Fatalf("skew %v rtt %v: the start-up leaked into the measurement", skew, rtt)
	}
}

func TestProbeRoundTrip(t *testing.T) {
	// A real TCP probe from the "peer", over loopback only: to a listener
	// on 127.0.0.1 and to the same port on ::1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var got probe.Options
	srv := &peer.Server{Probe: func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result {
		got = o
		return probe.ProbeAll(ctx, targets, o)
	}}
	p := peertest.Start(t, peertest.Options{Server: srv})
	c := dial(t, p.Config())
	targets := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	rs, err := c.Probe(ctxT(t, 5*time.Second), targets, probe.Options{Method: probe.TCP, Count: 2, Interval: 20 * time.Millisecond, Timeout: 150500 * time.Microsecond, Ports: []int{port}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Target != targets[0] || !rs[0].Reachable || rs[0].Sent != 2 || rs[0].Received != 2 || rs[0].RTT <= 0 {
		t.Fatalf("results %+v", rs)
	}
	if len(rs[0].Detail) == 0 || !strings.Contains(rs[0].Detail[0], "2/2 answered") {
		t.Errorf("detail %q", rs[0].Detail)
	}
	if got.Timeout != 151*time.Millisecond || got.Count != 2 || got.Interval != 20*time.Millisecond || !slices.Equal(got.Ports, []int{port}) {
		t.Errorf("the peer probed with %+v", got)
	}
	wantLine := "probe tcp 151 2 20 " + strconv.Itoa(port) + " 127.0.0.1 ::1"
	if lines := p.Lines(); !slices.Equal(lines, []string{wantLine}) {
		t.Errorf("sent %q, want %q", lines, wantLine)
	}

	// Zero options are lib/probe's defaults, ICMP without ports.
	srv.Probe = func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result {
		got = o
		return []probe.Result{{Target: targets[0], Sent: 3, Received: 0, Loss: 100, Err: "timed out\n| evil"}}
	}
	rs, err = c.Probe(ctxT(t, 5*time.Second), targets[:1], probe.Options{})
	if err != nil || rs[0].Reachable || rs[0].Err != "timed out / evil" {
		t.Fatalf("default probe: %+v, %v", rs, err)
	}
	if got.Method != probe.ICMP || got.Count != probe.DefaultCount || got.Timeout != probe.DefaultTimeout || got.Interval != probe.DefaultInterval || len(got.Ports) != 0 {
		t.Errorf("defaults sent as %+v", got)
	}

	// Options the grammar refuses are refused before anything is sent.
	n := len(p.Lines())
	if _, err := c.Probe(ctxT(t, 5*time.Second), targets, probe.Options{Count: 50}); err == nil || !strings.Contains(err.Error(), "COUNT: 50 is not in 1..10") {
		t.Errorf("count 50: %v", err)
	}
	if _, err := c.Probe(ctxT(t, 5*time.Second), nil, probe.Options{}); err == nil {
		t.Error("no targets: no error")
	}
	if len(p.Lines()) != n {
		t.Errorf("refused requests were sent: %q", p.Lines()[n:])
	}

	// A peer that answers for other targets than asked is not believed.
	srv.Probe = func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result {
		return []probe.Result{{Target: netip.MustParseAddr("192.0.2.66")}}
	}
	if _, err := c.Probe(ctxT(t, 5*time.Second), targets[:1], probe.Options{}); err == nil || !strings.Contains(err.Error(), "answered for 192.0.2.66 where 127.0.0.1 was asked") {
		t.Errorf("wrong target: %v", err)
	}
}

func TestHostKeyChecks(t *testing.T) {
	p := peertest.Start(t, peertest.Options{})
	host := knownhosts.Normalize(p.Addr.String())
	other := peertest.WriteKey(t, filepath.Join(t.TempDir(), "other"))
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name       string
		knownHosts string
		want       string
	}{
		{"unknown host", write("empty", "# nothing yet\n"),
			"ssh to node2 (" + p.Addr.String() + "): host key: unknown host key for " + host + ": no entry in " + filepath.Join(dir, "empty")},
		{"another host's entry only", write("otherhost", knownhosts.Line([]string{"198.51.100.9"}, p.HostKey)+"\n"),
			"unknown host key for " + host + ": no entry in " + filepath.Join(dir, "otherhost")},
		{"changed host key", write("changed", "# line 1\n"+knownhosts.Line([]string{p.Addr.String()}, other)+"\n"),
			"host key: host key mismatch for " + host + " in " + filepath.Join(dir, "changed") + ": the peer offered ssh-ed25519 SHA256:" +
				strings.TrimPrefix(ssh.FingerprintSHA256(p.HostKey), "SHA256:") + ", the file has another at line 2"},
		{"revoked", write("revoked", "@revoked "+knownhosts.Line([]string{"*"}, p.HostKey)+"\n"+knownhosts.Line([]string{p.Addr.String()}, p.HostKey)+"\n"),
			"host key of " + host + " is revoked in " + filepath.Join(dir, "revoked")},
		{"no known_hosts file", filepath.Join(dir, "missing"),
			"host key: known_hosts: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"known_hosts not configured", "", "ssh.known_hosts is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := p.Config()
			cfg.SSH.KnownHosts = tc.knownHosts
			c, err := peer.Dial(ctxT(t, 5*time.Second), cfg)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// A peer with several host keys (as sshd has: ECDSA, ed25519, RSA) is
// asked for the kind known_hosts holds; otherwise the client's preferred
// ECDSA key would read as a mismatch.
func TestHostKeyAlgorithmFromKnownHosts(t *testing.T) {
	p := peertest.Start(t, peertest.Options{ECDSAHostKey: true})
	c := dial(t, p.Config())
	if _, err := c.State(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestClientKeyRefused(t *testing.T) {
	other := peertest.WriteKey(t, filepath.Join(t.TempDir(), "other"))
	p := peertest.Start(t, peertest.Options{AuthorizedKey: other})
	cfg := p.Config()
	_, err := peer.Dial(ctxT(t, 5*time.Second), cfg)
	want := "ssh to node2 (" + p.Addr.String() + "): login: the peer refused " + cfg.SSH.KeyFile + " as user root"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v\nwant %q", err, want)
	}

	cfg.SSH.KeyFile = filepath.Join(t.TempDir(), "none")
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg); err == nil || !strings.Contains(err.Error(), "key: reading the cluster key: open "+cfg.SSH.KeyFile) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestDialRefusedAndUnconfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := peertest.Start(t, peertest.Options{})
	cfg := p.Config()
	cfg.SSH.Port = port
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg); err == nil || err.Error() != "ssh to node2 (127.0.0.1:"+strconv.Itoa(port)+"): dial: connect: connection refused" || errors.Is(err, peer.ErrNoHandshake) {
		t.Fatalf("refused: %v", err)
	}

	// A SYN nobody answers (a dead host): a dialer that waits for its ctx
	// stands in, since only loopback may be used here.
	blackhole := peer.WithDialer(func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	})
	cfg = p.Config()
	cfg.SSH.ConnectTimeout.Duration = 200 * time.Millisecond
	start := time.Now()
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg, blackhole); err == nil || !strings.HasSuffix(err.Error(), "): dial: no connection within 200ms (ssh.connect_timeout)") ||
		time.Since(start) > time.Second {
		t.Fatalf("blackhole: %v after %v", err, time.Since(start))
	}
	cfg.SSH.ConnectTimeout.Duration = 5 * time.Second
	if _, err := peer.Dial(ctxT(t, 200*time.Millisecond), cfg, blackhole); !errors.Is(err, context.DeadlineExceeded) || !strings.HasSuffix(err.Error(), "): dial: context deadline exceeded") {
		t.Fatalf("blackhole, ctx first: %v", err)
	}
	cfg = p.Config()
	cfg.Node = ""
	cfg.Nodes[0].Name = "not-this-host"
	cfg.Nodes[1].Name = "nor-this"
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg); err == nil || !strings.Contains(err.Error(), "does not say which node this is") {
		t.Fatalf("no self: %v", err)
	}
}

// A peer whose port accepts and then never speaks (a frozen sshd, a
// stopped machine behind a live NAT): Dial ends by ctx's deadline or by
// connect_timeout, whichever comes first.
func TestDialSilentPeerIsBounded(t *testing.T) {
	p := peertest.Start(t, peertest.Options{Silent: true})
	for _, tc := range []struct {
		name    string
		ctx     time.Duration
		connect time.Duration
		want    string
	}{
		{"ctx first", 300 * time.Millisecond, 5 * time.Second, "handshake: context deadline exceeded"},
		{"connect_timeout first", 5 * time.Second, 300 * time.Millisecond, "handshake: no SSH handshake within 300ms (ssh.connect_timeout)"},
		// A longer connect_timeout: the missing greeting decides first.
		{"no greeting", 5 * time.Second, 5 * time.Second, "handshake: connected, but no SSH greeting within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := p.Config()
			cfg.SSH.ConnectTimeout.Duration = tc.connect
			start := time.Now()
			_, err := peer.Dial(ctxT(t, tc.ctx), cfg)
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// What the fence reads as "alive kernel, hung processes".
			if !errors.Is(err, peer.ErrNoHandshake) {
				t.Fatalf("error %v is not ErrNoHandshake", err)
			}
			want := min(tc.ctx, tc.connect, peer.GreetingTimeout)
			if took < want-50*time.Millisecond || took > want+500*time.Millisecond {
				t.Fatalf("Dial took %v, want about %v", took, want)
			}
		})
	}
	// WithHandshakeWait: the greeting may take its whole wait (not
	// GreetingTimeout), and connected is called once the TCP connection is up.
	var connected int
	cfg := p.Config()
	cfg.SSH.ConnectTimeout.Duration = 300 * time.Millisecond
	start := time.Now()
	_, err := peer.Dial(ctxT(t, 5*time.Second), cfg, peer.WithHandshakeWait(1500*time.Millisecond, func() { connected++ }))
	if took := time.Since(start); !errors.Is(err, peer.ErrNoHandshake) || !strings.Contains(fmt.Sprint(err), "no SSH handshake within 1.5s (the handshake wait)") || connected != 1 || took < 1400*time.Millisecond || took > 2500*time.Millisecond {
		t.Fatalf("WithHandshakeWait: %v after %v, connected called %d times", err, took, connected)
	}
	// Cancelled (not timed out) while waiting.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, err := peer.Dial(ctx, p.Config()); !errors.Is(err, context.Canceled) || time.Since(start) > 600*time.Millisecond {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
}

// A peer that takes the command and never answers: the command ends by
// ctx, and the client is closed (later calls fail at once).
func TestCommandThatNeverAnswersIsBounded(t *testing.T) {
	p := peertest.Start(t, peertest.Options{Hang: true})
	c := dial(t, p.Config())
	start := time.Now()
	_, err := c.State(ctxT(t, 300*time.Millisecond))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "peer command state: no answer from node2") {
		t.Fatalf("error %v", err)
	}
	if took < 250*time.Millisecond || took > 800*time.Millisecond {
		t.Fatalf("took %v, want about 300ms", took)
	}
	start = time.Now()
	if _, _, err := c.Time(ctxT(t, 5*time.Second)); err == nil || time.Since(start) > time.Second {
		t.Fatalf("after the deadline: %v after %v", err, time.Since(start))
	}
}

// peer.ReadOnly logs in with ssh.check_key_file when it is set (and with
// key_file when not); without the option the cluster key is used.
func TestReadOnlyUsesTheCheckKey(t *testing.T) {
	checkKey := filepath.Join(t.TempDir(), "check")
	checkPub := peertest.WriteKey(t, checkKey)
	p := peertest.Start(t, peertest.Options{AuthorizedKey: checkPub})
	cfg := p.Config()
	cfg.SSH.CheckKeyFile = checkKey
	c, err := peer.Dial(ctxT(t, 5*time.Second), cfg, peer.ReadOnly())
	if err != nil {
		t.Fatalf("with the check key: %v", err)
	}
	c.Close()
	// The cluster key is not authorized on this peer: without ReadOnly it
	// is the one offered, and refused.
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg); err == nil || !strings.Contains(err.Error(), "the peer refused "+cfg.SSH.KeyFile) {
		t.Fatalf("without ReadOnly: %v; want the cluster key refused", err)
	}
	// No check key configured: ReadOnly falls back to the cluster key.
	cfg.SSH.CheckKeyFile = ""
	if _, err := peer.Dial(ctxT(t, 5*time.Second), cfg, peer.ReadOnly()); err == nil || !strings.Contains(err.Error(), "the peer refused "+cfg.SSH.KeyFile) {
		t.Fatalf("ReadOnly without check_key_file: %v; want key_file offered", err)
	}
}
