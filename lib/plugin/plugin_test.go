package plugin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func run(t *testing.T, spec Spec, args ...string) (int, string, []string) {
	t.Helper()
	if spec.Name == "" {
		spec.Name, spec.Binary = "PBX_TEST", "check_pbx_test"
	}
	var out bytes.Buffer
	code := Execute(spec, args, &out)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	return code, lines[0], lines[1:]
}

func fixed(r Result) Spec {
	var warn string
	return Spec{
		Flags: func(fs *pflag.FlagSet) { fs.StringVarP(&warn, "warning", "w", "", "warning") },
		Check: func(context.Context, *Env) Result { return r },
	}
}

func TestHelpVersionAndUsageExit3(t *testing.T) {
	s := fixed(Result{State: OK, Summary: "fine"})
	s.Description = "Checks a test thing."
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		code, first, rest := run(t, s, args...)
		if code != 3 || !strings.HasPrefix(first, "check_pbx_test (pbxha)") || !strings.Contains(strings.Join(rest, "\n"), "-t, --timeout") {
			t.Fatalf("%v: %d %q", args, code, first)
		}
	}
	for _, args := range [][]string{{"-V"}, {"--version"}} {
		if code, first, _ := run(t, s, args...); code != 3 || first != "check_pbx_test (pbxha) dev" {
			t.Fatalf("%v: %d %q", args, code, first)
		}
	}
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "PBX_TEST UNKNOWN - usage: unknown flag: --bogus"},
		{[]string{"-t", "abc"}, `PBX_TEST UNKNOWN - usage: invalid argument "abc" for "-t, --timeout" flag`},
		{[]string{"-t", "5:sometimes"}, `"sometimes" is not a state`},
		{[]string{"-t", "0"}, `not a number of seconds`},
		{[]string{"--role", "boss"}, `"boss" is not a role`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-w"}, `flag needs an argument: 'w' in -w`},
	}
	for _, u := range usage {
		code, first, _ := run(t, s, u.args...)
		if code != 3 || !strings.Contains(first, u.want) || !strings.HasPrefix(first, "PBX_TEST UNKNOWN - usage: ") {
			t.Errorf("%v: %d %q, want %q", u.args, code, first, u.want)
		}
	}
	s.Validate = func(*Env) error { return Usagef("flag --warning: %q is not good", "x") }
	if code, first, _ := run(t, s); code != 3 || first != `PBX_TEST UNKNOWN - usage: flag --warning: "x" is not good` {
		t.Fatalf("validate: %d %q", code, first)
	}
}

func TestTimeoutWhateverTheCheckDoes(t *testing.T) {
	hang := Spec{Check: func(ctx context.Context, env *Env) Result {
		env.Step("waiting for %s", "a silent peer")
		select {} // ignores ctx on purpose: Execute must still return
	}}
	start := time.Now()
	code, first, _ := run(t, hang, "-t", "0.2")
	if code != 2 || first != "PBX_TEST CRITICAL - timed out after 0.2s while waiting for a silent peer" {
		t.Fatalf("%d %q", code, first)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("returned after %v", el)
	}
	code, first, _ = run(t, hang, "-t", "0.1:unknown")
	if code != 3 || !strings.HasPrefix(first, "PBX_TEST UNKNOWN - timed out after 0.1s") {
		t.Fatalf("%d %q", code, first)
	}
	// A check that notices the deadline itself and returns some error is
	// still reported as the timeout, with the -t state.
	polite := Spec{Check: func(ctx context.Context, env *Env) Result {
		env.Step("dialing")
		<-ctx.Done()
		return Result{State: Critical, Summary: "dial failed: " + ctx.Err().Error()}
	}}
	if code, first, _ := run(t, polite, "-t", "0.1:warning"); code != 1 || first != "PBX_TEST WARNING - timed out after 0.1s while dialing" {
		t.Fatalf("%d %q", code, first)
	}
}

func TestPanicIsUnknown(t *testing.T) {
	p := Spec{Check: func(context.Context, *Env) Result { panic(errors.New("boom\nsecond line")) }}
	code, first, rest := run(t, p)
	if code != 3 || first != "PBX_TEST UNKNOWN - internal error: boom second line" || len(rest) != 0 {
		t.Fatalf("%d %q %q", code, first, rest)
	}
	_, _, rest = run(t, p, "-vvv")
	if !strings.Contains(strings.Join(rest, "\n"), "goroutine") {
		t.Fatalf("no stack at -vvv: %q", rest)
	}
}

func TestOutputFormat(t *testing.T) {
	r := Result{
		Subs: []Result{
			{State: OK, Summary: "/ 12% used", Perf: []Perf{{Label: "/", Value: 1024, UOM: "B", Min: F(0), Max: F(8192)}}},
			{State: Critical, Summary: "/var 95% used (critical > 90)", Perf: []Perf{{Label: "/var pct", Value: 95.5, UOM: "%", Warn: "80", Crit: "90"}}},
			{State: Warning, Summary: "/srv 85% used", Long: []string{"detail | with bar"}},
		},
		Long: []string{"checked 3 mounts"},
	}
	code, first, rest := run(t, fixed(r))
	if code != 2 {
		t.Fatalf("exit %d", code)
	}
	want := "PBX_TEST CRITICAL - /var 95% used (critical > 90) | /=1024B;;;0;8192 '/var pct'=95.5%;80;90"
	if first != want {
		t.Fatalf("first line\n got %q\nwant %q", first, want)
	}
	wantRest := []string{
		`\_ [OK] / 12% used`,
		`\_ [CRITICAL] /var 95% used (critical > 90)`,
		`\_ [WARNING] /srv 85% used`,
		`    detail / with bar`,
		`checked 3 mounts`,
	}
	if strings.Join(rest, "\n") != strings.Join(wantRest, "\n") {
		t.Fatalf("long output\n got %q\nwant %q", rest, wantRest)
	}
	_, perf, _ := strings.Cut(first, " | ")
	if items, err := SplitPerfdata(perf); err != nil || len(items) != 2 {
		t.Fatalf("perfdata %q: %v %v", perf, items, err)
	}
}

func TestAllOKSummaryJoinsSubs(t *testing.T) {
	r := Result{Subs: []Result{{State: OK, Summary: "md0(raid1):UU"}, {State: OK, Summary: "md1(raid1):UU"}}}
	if _, first, _ := run(t, fixed(r)); first != "PBX_TEST OK - md0(raid1):UU, md1(raid1):UU" {
		t.Fatalf("%q", first)
	}
	r = Result{Subs: []Result{{State: Unknown, Summary: "tw_cli missing"}, {State: Warning, Summary: "md0 resync"}}}
	if code, first, _ := run(t, fixed(r)); code != 3 || first != "PBX_TEST UNKNOWN - tw_cli missing" {
		t.Fatalf("%d %q", code, first)
	}
}

func TestSummaryCannotBreakOutput(t *testing.T) {
	r := Result{State: Warning, Summary: "peer said: a|b\nevil=1"}
	if _, first, rest := run(t, fixed(r)); first != "PBX_TEST WARNING - peer said: a/b evil=1" || len(rest) != 0 {
		t.Fatalf("%q %q", first, rest)
	}
}

func TestVerboseDebugLines(t *testing.T) {
	s := Spec{Check: func(_ context.Context, env *Env) Result {
		env.Debugf(1, "one")
		env.Debugf(2, "two")
		return Result{State: OK, Summary: "x"}
	}}
	if _, _, rest := run(t, s, "-v"); strings.Join(rest, ",") != "one" {
		t.Fatalf("-v: %q", rest)
	}
	if _, _, rest := run(t, s, "-vv"); !strings.Contains(strings.Join(rest, ","), "one,two") {
		t.Fatalf("-vv: %q", rest)
	}
}

func TestPerfString(t *testing.T) {
	cases := []struct {
		p    Perf
		want string
	}{
		{Perf{Label: "time", Value: 0.0123456789, UOM: "s"}, "time=0.012346s"},
		{Perf{Label: "calls", Value: 3}, "calls=3"},
		{Perf{Label: "x", Unknown: true, UOM: "s", Crit: "5"}, "x=U;;5"},
		{Perf{Label: "it's", Value: -1.5}, "'it''s'=-1.5"},
		{Perf{Label: "big", Value: 1e15, UOM: "B", Max: F(2e15)}, "big=1000000000000000B;;;;2000000000000000"},
		{Perf{Label: "", Value: 1}, "''=1"},
		{Perf{Label: "tiny", Value: -0.0000001}, "tiny=0"},
	}
	for _, tc := range cases {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Service Unavailable\r\n", "Service Unavailable"},
		{"a|b", "a/b"},
		{"x\x00y\tz", "x y z"},
		{"  lots   of\n\n space ", "lots of space"},
		{"bad \xff utf8", "bad ? utf8"},
	}
	for _, tc := range cases {
		if got := Clean(tc.in, 0); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Clean(strings.Repeat("a", 50), 10); got != "aaaaaaaaaa..." {
		t.Errorf("bounded: %q", got)
	}
}

func FuzzClean(f *testing.F) {
	f.Add("SIP/2.0 503 Service Unavailable\r\n| x", 20)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max > 1000 || max < -1 {
			return
		}
		c := Clean(s, max)
		if strings.ContainsAny(c, "|\r\n\t") {
			t.Fatalf("Clean(%q) = %q", s, c)
		}
		limit := max
		if limit <= 0 {
			limit = MaxPeerText
		}
		if n := len([]rune(c)); n > limit+3 {
			t.Fatalf("Clean(%q, %d) has %d runes", s, max, n)
		}
	})
}

func TestSplitPerfdata(t *testing.T) {
	good := []string{"a=1", "'a b'=1.5s;1;2;0;10 c=U", "'it''s'=-1%;@1:2;~:3", "x=1c;;;;", "t=0.5ms;0.1:;;0"}
	for _, g := range good {
		if _, err := SplitPerfdata(g); err != nil {
			t.Errorf("%q: %v", g, err)
		}
	}
	bad := []string{"a b=1", "=1", "a=1e3", "a=1;2;3;4;5;6", "a=1parsecs", "'a=1", "a=1;x", "a=1;;;a", "a"}
	for _, b := range bad {
		if _, err := SplitPerfdata(b); err == nil {
			t.Errorf("%q: accepted", b)
		}
	}
}

// Whatever a check puts in a Perf, the printed perfdata stays valid.
func FuzzPerfString(f *testing.F) {
	f.Add("label", 1.5, "s", "10", "20")
	f.Fuzz(func(t *testing.T, label string, v float64, uom, warn, crit string) {
		for _, u := range []string{"", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"} {
			if uom == u {
				goto ok
			}
		}
		return
	ok:
		if strings.ContainsAny(label, "=\n\r") || label == "" {
			return
		}
		p := Perf{Label: label, Value: v, UOM: uom, Min: F(0)}
		if _, err := SplitPerfdata(p.String()); err != nil {
			t.Fatalf("%+v -> %q: %v", p, p.String(), err)
		}
	})
}
