package ntptime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func policy() Policy {
	return Policy{Offset: threshold.Pairf(DefaultWarning, DefaultCritical), TimeoutState: plugin.Critical}
}

func ok(server string, offset time.Duration, stratum int) Sample {
	return Sample{Server: server, Offset: offset, RTT: 2 * time.Millisecond, Stratum: stratum, Reference: "192.0.2.99", Version: 4}
}

// format renders a result as the plugin prints it.
func format(r plugin.Result) (plugin.State, string, string) {
	out := r.Format("PBX_TIME")
	first, _, _ := strings.Cut(out, "\n")
	summary, perf, _ := strings.Cut(first, " | ")
	return r.Overall(), summary, perf
}

func TestEvaluateServers(t *testing.T) {
	timeout := Sample{Server: "192.0.2.3", Err: fmt.Errorf("read udp: %w", os.ErrDeadlineExceeded), TimedOut: true, Waited: 1612 * time.Millisecond}
	refused := Sample{Server: "192.0.2.4:1234", Err: fmt.Errorf("read: %w", syscall.ECONNREFUSED)}
	cases := []struct {
		name    string
		samples []Sample
		mod     func(*Policy)
		state   plugin.State
		summary string
		perf    string
	}{
		{"healthy", []Sample{ok("192.0.2.1", 12*time.Millisecond, 2)}, nil, plugin.OK,
			"PBX_TIME OK - 192.0.2.1: offset +0.012s, stratum 2",
			"offset=0.012s;0.5;1 stratum=2 rtt=0.002s;;;0"},
		{"negative offset compared by its size", []Sample{ok("192.0.2.1", -700*time.Millisecond, 2)}, nil, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: offset -0.7s (warning > 0.5), stratum 2",
			"offset=-0.7s;0.5;1 stratum=2 rtt=0.002s;;;0"},
		{"300 s ahead", []Sample{ok("192.0.2.1", 300*time.Second, 8)}, nil, plugin.Critical,
			"PBX_TIME CRITICAL - 192.0.2.1: offset +300s (critical > 1), stratum 8",
			"offset=300s;0.5;1 stratum=8 rtt=0.002s;;;0"},
		{"exactly on the warning edge is fine", []Sample{ok("192.0.2.1", 500*time.Millisecond, 2)}, nil, plugin.OK,
			"PBX_TIME OK - 192.0.2.1: offset +0.5s, stratum 2", ""},
		{"stratum thresholds", []Sample{ok("192.0.2.1", 0, 12)}, func(p *Policy) {
			p.Stratum = threshold.Pairf("10", "14")
		}, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: offset +0s, stratum 12 (warning > 10)",
			"offset=0s;0.5;1 stratum=12;10;14 rtt=0.002s;;;0"},
		{"leap alarm", []Sample{func() Sample {
			s := ok("192.0.2.1", 0, 3)
			s.Leap, s.Invalid = ntp.LeapNotInSync, ntp.ErrInvalidLeapSecond
			return s
		}()}, nil, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: offset +0s, stratum 3, server not synchronised (leap indicator 3, alarm)", ""},
		{"leap alarm and a bad offset: the worst", []Sample{func() Sample {
			s := ok("192.0.2.1", 5*time.Second, 3)
			s.Leap, s.Invalid = ntp.LeapNotInSync, ntp.ErrInvalidLeapSecond
			return s
		}()}, nil, plugin.Critical, "", ""},
		{"stratum 16", []Sample{func() Sample {
			s := ok("192.0.2.1", 0, 16)
			s.Leap, s.Invalid = ntp.LeapNotInSync, ntp.ErrInvalidStratum
			return s
		}()}, nil, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: offset +0s, stratum 16, server not synchronised (stratum 16)", ""},
		{"kiss-o'-death", []Sample{func() Sample {
			s := ok("192.0.2.1", 0, 0)
			s.Reference, s.Invalid = "RATE", ntp.ErrKissOfDeath
			return s
		}()}, nil, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: kiss-o'-death RATE (server refuses to serve time)",
			"offset=U;0.5;1 stratum=U rtt=0.002s;;;0"},
		{"stale server clock", []Sample{func() Sample {
			s := ok("192.0.2.1", 0, 2)
			s.Invalid = ntp.ErrServerClockFreshness
			return s
		}()}, nil, plugin.Warning,
			"PBX_TIME WARNING - 192.0.2.1: offset +0s, stratum 2, unusable for synchronisation: server clock not fresh", ""},
		{"leap second announced is fine", []Sample{func() Sample {
			s := ok("192.0.2.1", 0, 2)
			s.Leap = ntp.LeapAddSecond
			return s
		}()}, nil, plugin.OK, "PBX_TIME OK - 192.0.2.1: offset +0s, stratum 2, leap second announced", ""},
		{"silent server gets the timeout state", []Sample{timeout}, nil, plugin.Critical,
			"PBX_TIME CRITICAL - 192.0.2.3: no response within 1.6s",
			"offset=U;0.5;1 stratum=U rtt=U;;;0"},
		{"silent server with -t N:UNKNOWN", []Sample{timeout}, func(p *Policy) { p.TimeoutState = plugin.Unknown }, plugin.Unknown,
			"PBX_TIME UNKNOWN - 192.0.2.3: no response within 1.6s", ""},
		{"refused is critical whatever -t says", []Sample{refused}, func(p *Policy) { p.TimeoutState = plugin.Unknown }, plugin.Critical,
			"PBX_TIME CRITICAL - 192.0.2.4:1234: no response: connection refused (nothing listens there)", ""},
		{"unresolvable", []Sample{{Server: "ntp.example.invalid", Err: fmt.Errorf("resolving: %w", &net.DNSError{Err: "no such host", Name: "ntp.example.invalid", IsNotFound: true})}},
			nil, plugin.Critical, "PBX_TIME CRITICAL - ntp.example.invalid: cannot resolve ntp.example.invalid: no such host", ""},
		{"resolver silent", []Sample{{Server: "ntp.example.net", TimedOut: true, Err: &net.DNSError{Err: "i/o timeout", Name: "ntp.example.net", IsTimeout: true}}},
			func(p *Policy) { p.TimeoutState = plugin.Unknown }, plugin.Unknown, "PBX_TIME UNKNOWN - ntp.example.net: cannot resolve ntp.example.net: i/o timeout", ""},
		{"several: the worst names itself, labels carry the server",
			[]Sample{ok("192.0.2.1", 0, 2), ok("192.0.2.2", 2*time.Second, 2), refused}, nil, plugin.Critical,
			"PBX_TIME CRITICAL - 192.0.2.2: offset +2s (critical > 1), stratum 2, 192.0.2.4:1234: no response: connection refused (nothing listens there)",
			"192.0.2.1_offset=0s;0.5;1 192.0.2.1_stratum=2 192.0.2.1_rtt=0.002s;;;0 192.0.2.2_offset=2s;0.5;1 192.0.2.2_stratum=2 192.0.2.2_rtt=0.002s;;;0 " +
				"'192.0.2.4:1234_offset'=U;0.5;1 '192.0.2.4:1234_stratum'=U '192.0.2.4:1234_rtt'=U;;;0"},
		{"several OK: all named", []Sample{ok("192.0.2.1", 0, 2), ok("192.0.2.2", time.Millisecond, 3)}, nil, plugin.OK,
			"PBX_TIME OK - 192.0.2.1: offset +0s, stratum 2, 192.0.2.2: offset +0.001s, stratum 3", ""},
		{"--any: the best decides", []Sample{refused, ok("192.0.2.2", 2*time.Second, 2), ok("192.0.2.1", 0, 2)},
			func(p *Policy) { p.Any = true }, plugin.OK,
			"PBX_TIME OK - best of 3 servers: 192.0.2.1: offset +0s, stratum 2", ""},
		{"--any: all bad", []Sample{refused, ok("192.0.2.2", 2*time.Second, 2)},
			func(p *Policy) { p.Any = true }, plugin.Critical,
			"PBX_TIME CRITICAL - best of 2 servers: 192.0.2.2: offset +2s (critical > 1), stratum 2", ""},
		{"--any with one server is the plain check", []Sample{ok("192.0.2.1", 0, 2)},
			func(p *Policy) { p.Any = true }, plugin.OK, "PBX_TIME OK - 192.0.2.1: offset +0s, stratum 2", "offset=0s;0.5;1 stratum=2 rtt=0.002s;;;0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			if tc.mod != nil {
				tc.mod(&p)
			}
			r := Evaluate(tc.samples, nil, p)
			state, summary, perf := format(r)
			if state != tc.state {
				t.Errorf("state %s, want %s (%q)", state, tc.state, summary)
			}
			if tc.summary != "" && summary != tc.summary {
				t.Errorf("summary\n got %q\nwant %q", summary, tc.summary)
			}
			if tc.perf != "" && perf != tc.perf {
				t.Errorf("perf\n got %q\nwant %q", perf, tc.perf)
			}
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Errorf("perfdata %q: %v", perf, err)
			}
		})
	}
}

func TestEvaluateAnyKeepsEveryServerInLongOutput(t *testing.T) {
	p := policy()
	p.Any = true
	out := Evaluate([]Sample{ok("192.0.2.1", 0, 2), {Server: "192.0.2.9", Err: errors.New("boom")}}, nil, p).Format("PBX_TIME")
	for _, want := range []string{"[OK] 192.0.2.1: offset +0s", "[CRITICAL] 192.0.2.9: bad reply: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestEvaluateLocal(t *testing.T) {
	cases := []struct {
		name    string
		local   LocalStatus
		state   plugin.State
		summary string
		perf    string
	}{
		{"chronyd synchronised", LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, Offset: -0.000123, Stratum: 3, Reference: "192.0.2.1"},
			plugin.OK, "local chronyd: synchronised to 192.0.2.1, stratum 3, offset -0.000123s", "local_offset=-0.000123s;0.5;1 local_stratum=3"},
		{"chronyd far off", LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, Offset: 2.5, Stratum: 3, Reference: "192.0.2.1"},
			plugin.Critical, "local chronyd: synchronised to 192.0.2.1, stratum 3, offset +2.5s (critical > 1)", ""},
		{"chronyd unsynchronised", LocalStatus{Daemon: "chronyd", HasTracking: true, Leap: 3},
			plugin.Warning, "local clock not synchronised (chronyd)", "local_offset=U;0.5;1 local_stratum=U"},
		{"chronyd free-running", LocalStatus{Daemon: "chronyd", HasTracking: true, Synced: true, FreeRunning: true, Stratum: 8},
			plugin.Warning, "local chronyd: free-running on its own clock (local stratum 8), no time source", ""},
		{"timesyncd synchronised", LocalStatus{Daemon: "systemd-timesyncd", Synced: true},
			plugin.OK, "local systemd-timesyncd: synchronised", "-"},
		{"timesyncd not", LocalStatus{Daemon: "systemd-timesyncd"},
			plugin.Warning, "local clock not synchronised (systemd-timesyncd)", "-"},
		{"none", LocalStatus{}, plugin.Unknown, "no local time daemon found (chronyd, systemd-timesyncd)", "-"},
		{"cannot ask", LocalStatus{Daemon: "chronyd", Where: "127.0.0.1:323", Err: fmt.Errorf("read: %w", syscall.ECONNREFUSED)},
			plugin.Unknown, "local chronyd at 127.0.0.1:323: connection refused (nothing listens there)", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := EvaluateLocal(tc.local, policy())
			if r.State != tc.state || r.Summary != tc.summary {
				t.Errorf("got %s %q, want %s %q", r.State, r.Summary, tc.state, tc.summary)
			}
			var perf []string
			for _, p := range r.Perf {
				perf = append(perf, p.String())
			}
			got := strings.Join(perf, " ")
			switch tc.perf {
			case "":
			case "-":
				if got != "" {
					t.Errorf("perf %q, want none", got)
				}
			default:
				if got != tc.perf {
					t.Errorf("perf %q, want %q", got, tc.perf)
				}
			}
		})
	}
}

func TestEvaluateLocalCountsWithServers(t *testing.T) {
	l := LocalStatus{Daemon: "chronyd", HasTracking: true, Leap: 3}
	state, summary, _ := format(Evaluate([]Sample{ok("192.0.2.1", 0, 2)}, &l, policy()))
	if state != plugin.Warning || summary != "PBX_TIME WARNING - local clock not synchronised (chronyd)" {
		t.Fatalf("%s %q", state, summary)
	}
	// --any picks among servers only: the local daemon still counts.
	p := policy()
	p.Any = true
	state, _, _ = format(Evaluate([]Sample{ok("192.0.2.1", 0, 2), ok("192.0.2.2", 0, 2)}, &l, p))
	if state != plugin.Warning {
		t.Fatalf("--any hid the local daemon: %s", state)
	}
}
