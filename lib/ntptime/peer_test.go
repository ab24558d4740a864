package ntptime

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/peer/peertest"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestEvaluatePeer(t *testing.T) {
	p := policy()
	p.Skew = threshold.Pairf(DefaultSkewWarning, DefaultSkewCritical)
	for _, tc := range []struct {
		name    string
		s       PeerSample
		mod     func(*Policy)
		state   plugin.State
		summary string
		perf    string
	}{
		{"in step", PeerSample{Node: "node2", Skew: 300 * time.Microsecond, RTT: 4 * time.Millisecond}, nil, plugin.OK,
			"PBX_TIME OK - peer node2: skew +0.0003s", "peer_skew=0.0003s;0.5;1"},
		{"behind, judged by its size", PeerSample{Node: "node2", Skew: -700 * time.Millisecond}, nil, plugin.Warning,
			"PBX_TIME WARNING - peer node2: skew -0.7s (warning > 0.5)", "peer_skew=-0.7s;0.5;1"},
		{"300 s ahead", PeerSample{Node: "node2", Skew: 300 * time.Second}, nil, plugin.Critical,
			"PBX_TIME CRITICAL - peer node2: skew +300s (critical > 1)", "peer_skew=300s;0.5;1"},
		{"own thresholds", PeerSample{Node: "node2", Skew: 150 * time.Millisecond}, func(p *Policy) { p.Skew = threshold.Pairf("0.1", "0.2") }, plugin.Warning,
			"PBX_TIME WARNING - peer node2: skew +0.15s (warning > 0.1)", "peer_skew=0.15s;0.1;0.2"},
		// Reachability is master_alive's verdict: here it is UNKNOWN.
		{"peer unreachable", PeerSample{Node: "node2", Err: errors.New("ssh to node2 (198.51.100.2:22): dial: connect: no route to host")}, nil, plugin.Unknown,
			"PBX_TIME UNKNOWN - peer node2: skew unknown: ssh to node2 (198.51.100.2:22): dial: connect: no route to host", "peer_skew=U;0.5;1"},
		{"peer text is cleaned", PeerSample{Err: errors.New("peer command time: node2 says: a\nb | c")}, nil, plugin.Unknown,
			"PBX_TIME UNKNOWN - peer: skew unknown: peer command time: node2 says: a b / c", "peer_skew=U;0.5;1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp := p
			if tc.mod != nil {
				tc.mod(&pp)
			}
			st, summary, perf := format(plugin.Result{Subs: []plugin.Result{EvaluatePeer(tc.s, pp)}})
			if st != tc.state || summary != tc.summary || perf != tc.perf {
				t.Fatalf("got %s %q | %q\nwant %s %q | %q", st, summary, perf, tc.state, tc.summary, tc.perf)
			}
		})
	}
	r := EvaluatePeer(PeerSample{Node: "node2", Skew: time.Millisecond, RTT: 4 * time.Millisecond}, Policy{Skew: p.Skew, Verbose: 1})
	if len(r.Long) != 1 || r.Long[0] != "peer clock read over SSH, round trip 0.004s (the skew is within ±0.002s)" {
		t.Errorf("-v: %q", r.Long)
	}
}

// sntpServer answers SNTP on 127.0.0.1 with the local clock.
func sntpServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 48 {
				pc.WriteTo(reply{stratum: 2, refID: "\xc0\x00\x02\x01"}.packet(buf[:n]), addr)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// writeConfig writes this node's cluster.toml for a fake peer, with an
// NTP server.
func writeConfig(t *testing.T, cfg *config.Config, ntpServer string) string {
	t.Helper()
	cfg.NTP.Servers = []string{ntpServer}
	b, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var skewPerf = regexp.MustCompile(`peer_skew=(-?[0-9.]+)s;`)

// TestCheckPeer runs check_pbx_time --peer in-process against an SSH peer
// (lib/peer/peertest) whose clock is shifted, and an SNTP server.
func TestCheckPeer(t *testing.T) {
	ntpAddr := sntpServer(t)
	run := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("PBXHA_CONFIG", "")
		var b bytes.Buffer
		code := plugin.Execute(Spec(), append([]string{"--role", "any", "-t", "5"}, args...), &b)
		first, _, _ := strings.Cut(b.String(), "\n")
		if _, perf, ok := strings.Cut(first, " | "); ok {
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Errorf("perfdata %q: %v", perf, err)
			}
		}
		return code, first, b.String()
	}
	for _, tc := range []struct {
		name  string
		ahead time.Duration
		args  []string
		code  int
		first string // prefix
		skew  float64
	}{
		{"in step", 0, nil, 0, "PBX_TIME OK - " + ntpAddr + ": offset ", 0},
		{"peer 2 s ahead", 2 * time.Second, nil, 2, "PBX_TIME CRITICAL - peer node2: skew +", 2},
		{"peer 0.3 s behind, tight thresholds", -300 * time.Millisecond, []string{"--skew-warning", "0.2", "--skew-critical", "0.5"}, 1,
			"PBX_TIME WARNING - peer node2: skew -", -0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ahead := tc.ahead
			p := peertest.Start(t, peertest.Options{Server: &peer.Server{Now: func() time.Time { return time.Now().Add(ahead) }}})
			path := writeConfig(t, p.Config(), ntpAddr)
			code, first, out := run(t, append([]string{"--config", path, "--peer"}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("exit %d %q\nwant exit %d, %q...\n%s", code, first, tc.code, tc.first, out)
			}
			if !strings.Contains(out, "\\_ [") || !strings.Contains(out, "peer node2: skew ") {
				t.Errorf("no peer sub-result:\n%s", out)
			}
			m := skewPerf.FindStringSubmatch(first)
			if m == nil {
				t.Fatalf("no peer_skew perfdata in %q", first)
			}
			if v, _ := strconv.ParseFloat(m[1], 64); v < tc.skew-0.05 || v > tc.skew+0.05 {
				t.Errorf("peer_skew %v, want %v±0.05", v, tc.skew)
			}
		})
	}

	t.Run("peer unreachable is UNKNOWN, the NTP part still counts", func(t *testing.T) {
		p := peertest.Start(t, peertest.Options{Silent: true})
		cfg := p.Config()
		cfg.SSH.ConnectTimeout.Duration = 300 * time.Millisecond
		path := writeConfig(t, cfg, ntpAddr)
		start := time.Now()
		code, first, out := run(t, "--config", path, "--peer")
		if code != 3 || !strings.HasPrefix(first, "PBX_TIME UNKNOWN - peer node2: skew unknown: ssh to node2 (") ||
			!strings.Contains(first, "handshake: no SSH handshake within 300ms") || !strings.Contains(first, "peer_skew=U;0.5;1") {
			t.Fatalf("exit %d %q\n%s", code, first, out)
		}
		if !strings.Contains(out, "[OK] "+ntpAddr+": offset ") {
			t.Errorf("NTP sub-result missing:\n%s", out)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})

	t.Run("no cluster.toml", func(t *testing.T) {
		if _, err := os.Stat(config.DefaultPath); err == nil {
			t.Skip(config.DefaultPath + " exists on this machine and would be read")
		}
		code, first, _ := run(t, "-H", ntpAddr, "--peer")
		if code != 3 || !strings.HasPrefix(first, "PBX_TIME UNKNOWN - peer: skew unknown: no /etc/pbxha/cluster.toml to find the peer in") {
			t.Fatalf("exit %d %q", code, first)
		}
	})

	t.Run("without --peer no SSH", func(t *testing.T) {
		p := peertest.Start(t, peertest.Options{})
		path := writeConfig(t, p.Config(), ntpAddr)
		code, first, _ := run(t, "--config", path)
		if code != 0 || strings.Contains(first, "peer") || len(p.Lines()) != 0 {
			t.Fatalf("exit %d %q, peer got %q", code, first, p.Lines())
		}
	})

	t.Run("bad skew range is a usage error", func(t *testing.T) {
		code, first, _ := run(t, "--peer", "--skew-warning", "x")
		if code != 3 || !strings.HasPrefix(first, "PBX_TIME UNKNOWN - usage: ") || !strings.Contains(first, "skew-warning") {
			t.Fatalf("exit %d %q", code, first)
		}
	})
}
