package ami

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	done := Observation{
		Addr: "192.0.2.10:5038", User: "monitor", Reached: StageCore, Version: "9.0.0",
		Connect: 300 * time.Microsecond, Login: 1200 * time.Microsecond, Ping: 420 * time.Microsecond,
		Core: CoreStatus{CurrentCalls: 3, ProcessedCalls: 42, Startup: now.Add(-26 * time.Hour), Reload: now.Add(-10 * time.Minute)},
		Now:  now,
	}
	with := func(f func(o *Observation)) Observation { o := done; f(&o); return o }
	base := Policy{Ping: threshold.Pairf("500", "2000"), TimeoutState: plugin.Critical}
	withPolicy := func(f func(p *Policy)) Policy { p := base; f(&p); return p }

	tests := []struct {
		name  string
		obs   Observation
		pol   Policy
		state plugin.State
		first string
		long  string // a line the long output must hold
	}{
		{"healthy", done, base, plugin.OK,
			"PBX_AMI OK - AMI 9.0.0 at 192.0.2.10:5038: ping 0.42 ms, 3 active calls, up 1d 2h | connect_time=0.3ms;;;0 login_time=1.2ms;;;0 ping_time=0.42ms;500;2000;0 calls=3;;;0 uptime=93600s;;;0",
			"last reload 2024-03-01 11:50:00 (10m 0s ago)"},
		{"slow ping", with(func(o *Observation) { o.Ping = 2500 * time.Millisecond }), base, plugin.Critical,
			"PBX_AMI CRITICAL - AMI 9.0.0 at 192.0.2.10:5038: ping 2500 ms (critical > 2000), 3 active calls, up 1d 2h |", ""},
		{"refused", Observation{Addr: "192.0.2.10:5038", Err: &StepError{Step: "connecting to 192.0.2.10:5038", Err: errors.New("connection refused")}},
			base, plugin.Critical, "PBX_AMI CRITICAL - connecting to 192.0.2.10:5038: connection refused", ""},
		{"timeout takes -t's state", Observation{Addr: "a:1", Reached: StageConnected, Err: &StepError{Step: "waiting for the greeting from a:1", Timeout: true, Waited: 8 * time.Second}},
			withPolicy(func(p *Policy) { p.TimeoutState = plugin.Warning }), plugin.Warning,
			"PBX_AMI WARNING - waiting for the greeting from a:1: no answer within 8.0s | connect_time=0ms;;;0", ""},
		{"closed", Observation{Addr: "a:1", Reached: StageGreeted, Version: "9.0.0", Err: &StepError{Step: "logging in to a:1 as u", Err: io.EOF}},
			base, plugin.Critical, "PBX_AMI CRITICAL - logging in to a:1 as u: the server closed the connection | connect_time=0ms;;;0",
			"Asterisk Call Manager/9.0.0, user "},
		{"login rejected", Observation{Addr: "a:1", Reached: StageGreeted, Err: &LoginError{User: "monitor", Message: "Authentication failed"}},
			base, plugin.Critical, "PBX_AMI CRITICAL - login rejected for user monitor: Authentication failed | connect_time=0ms;;;0", ""},
		{"restart within --min-uptime", with(func(o *Observation) { o.Core.Startup = now.Add(-90 * time.Second) }),
			withPolicy(func(p *Policy) { p.MinUptime = 5 * time.Minute }), plugin.Warning,
			"PBX_AMI WARNING - AMI 9.0.0 at 192.0.2.10:5038: ping 0.42 ms, 3 active calls, restarted 1m 30s ago (warning < --min-uptime 5m 0s) |", ""},
		{"uptime exactly --min-uptime", with(func(o *Observation) { o.Core.Startup = now.Add(-5 * time.Minute) }),
			withPolicy(func(p *Policy) { p.MinUptime = 5 * time.Minute }), plugin.OK, "up 5m 0s", ""},
		{"no startup time", with(func(o *Observation) { o.Core.Startup = time.Time{} }), base, plugin.OK,
			"uptime=U;;;0", "CoreStatus gave no readable startup time"},
		{"startup slightly ahead (clock jitter)", with(func(o *Observation) { o.Core.Startup = now.Add(20 * time.Second) }), base, plugin.OK,
			"up 0s", ""},
		{"calls unreadable", with(func(o *Observation) { o.CoreErr = errors.New("CoreStatus response has no CoreCurrentCalls") }), base, plugin.Unknown,
			"PBX_AMI UNKNOWN - AMI 9.0.0 at 192.0.2.10:5038: ping 0.42 ms, cannot read CoreStatus: CoreStatus response has no CoreCurrentCalls |", ""},
		{"calls and ping both bad: the worst wins", with(func(o *Observation) { o.Ping = 700 * time.Millisecond; o.Core.CurrentCalls = 90 }),
			withPolicy(func(p *Policy) { p.Calls = threshold.Pairf("50", "80") }), plugin.Critical,
			"ping 700 ms (warning > 500), 90 active calls (critical > 80)", ""},
		{"skipped events at -v", with(func(o *Observation) { o.Skipped = 4 }), withPolicy(func(p *Policy) { p.Verbose = 1 }), plugin.OK,
			"PBX_AMI OK", "events skipped while waiting for responses: 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.obs, tc.pol)
			out := r.Format("PBX_AMI")
			first, _, _ := strings.Cut(out, "\n")
			if r.Overall() != tc.state || !strings.Contains(first, tc.first) {
				t.Errorf("state %s, first line %q; want %s and %q", r.Overall(), first, tc.state, tc.first)
			}
			if tc.long != "" && !strings.Contains(out, "\n"+tc.long) {
				t.Errorf("long output lacks %q:\n%s", tc.long, out)
			}
			if _, perf, ok := strings.Cut(first, " | "); ok {
				if _, err := plugin.SplitPerfdata(perf); err != nil {
					t.Errorf("perfdata %q: %v", perf, err)
				}
			}
		})
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 42 * time.Second: "42s", 5*time.Minute + 3*time.Second: "5m 3s",
		2*time.Hour + 5*time.Minute + 59*time.Second: "2h 5m", 76 * time.Hour: "3d 4h",
	} {
		if got := human(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}
