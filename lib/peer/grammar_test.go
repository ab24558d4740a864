package peer

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string // nil: refused
		err  string
	}{
		{"state", []string{"state"}, ""},
		{"probe icmp 200 3 100 - 192.0.2.1", []string{"probe", "icmp", "200", "3", "100", "-", "192.0.2.1"}, ""},
		{"probe tcp 200 3 100 22,5060 2001:db8::1", []string{"probe", "tcp", "200", "3", "100", "22,5060", "2001:db8::1"}, ""},
		{"", nil, "empty command"},
		{" state", nil, "exactly one space"},
		{"state ", nil, "exactly one space"},
		{"probe  icmp", nil, "exactly one space"},
		{"state\tx", nil, `byte '\t'`},
		{"state;reboot", nil, "byte ';'"},
		{"state && id", nil, "byte '&'"},
		{"$(id)", nil, "byte '$'"},
		{"`id`", nil, "byte '`'"},
		{"State", nil, "byte 'S'"},
		{"state\nid", nil, `byte '\n'`},
		{"a/b", nil, "byte '/'"},
		{strings.Repeat("a", MaxWord+1), nil, "a word of 65 bytes"},
		{strings.Repeat("a ", MaxWords) + "a", nil, "65 words"},
		{strings.Repeat("a", MaxLine+1), nil, "command of 2049 bytes"},
	} {
		got, err := SplitLine(tc.line)
		if tc.want == nil {
			if err == nil || !errors.Is(err, ErrGrammar) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitLine(%q) = %q, %v; want an error containing %q", tc.line, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SplitLine(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		line string
		want []any // nil with err != "": refused
		err  string
	}{
		{"version", []any{}, ""},
		{"state", []any{}, ""},
		{"time", []any{}, ""},
		{"probe icmp 200 3 100 - 192.0.2.1", []any{"icmp", 200, 3, 100, []int{}, addr("192.0.2.1")}, ""},
		{"probe both 1 1 1 22,5060 192.0.2.1 2001:db8::1", []any{"both", 1, 1, 1, []int{22, 5060}, addr("192.0.2.1"), addr("2001:db8::1")}, ""},
		{"probe banner 5000 10 1000 1,65535 ::ffff:192.0.2.1", []any{"banner", 5000, 10, 1000, []int{1, 65535}, addr("::ffff:192.0.2.1")}, ""},

		{"reboot", nil, `unknown command "reboot" (known: demote, demote-below, maintenance-off, maintenance-on, manifest, probe, promote, state, time, version)`},
		{"state now", nil, `state: unexpected argument "now" (usage: state)`},
		{"probe", nil, "probe: missing METHOD (usage: probe METHOD TIMEOUT_MS COUNT INTERVAL_MS PORTS ADDR...)"},
		{"probe icmp 200 3 100 -", nil, "probe: ADDR takes 1 to 32 ADDR, got 0"},
		{"probe udp 200 3 100 - 192.0.2.1", nil, `METHOD: "udp" is not one of icmp, tcp, both, banner`},
		{"probe icmp 0 3 100 - 192.0.2.1", nil, "TIMEOUT_MS: 0 is not in 1..5000"},
		{"probe icmp 5001 3 100 - 192.0.2.1", nil, "TIMEOUT_MS: 5001 is not in 1..5000"},
		{"probe icmp 0200 3 100 - 192.0.2.1", nil, `TIMEOUT_MS: "0200" is not a number`},
		{"probe icmp -1 3 100 - 192.0.2.1", nil, `"-1" is not a number`},
		{"probe icmp 99999999999 3 100 - 192.0.2.1", nil, "is not a number"},
		{"probe icmp 200 11 100 - 192.0.2.1", nil, "COUNT: 11 is not in 1..10"},
		{"probe icmp 200 3 1001 - 192.0.2.1", nil, "INTERVAL_MS: 1001 is not in 1..1000"},
		{"probe tcp 200 3 100 0 192.0.2.1", nil, "PORTS: 0 is not a port"},
		{"probe tcp 200 3 100 65536 192.0.2.1", nil, "PORTS: 65536 is not a port"},
		{"probe tcp 200 3 100 22, 192.0.2.1", nil, `PORTS: "" is not a number`},
		{"probe tcp 200 3 100 1,2,3,4,5,6,7,8,9 192.0.2.1", nil, "PORTS: 9 ports (at most 8)"},
		{"probe icmp 200 3 100 - 192.0.2.300", nil, `ADDR: "192.0.2.300" is not an IP address`},
		{"probe icmp 200 3 100 - 192.0.2.01", nil, `ADDR: "192.0.2.01" is not an IP address`},
		{"probe icmp 200 3 100 - 2001:db8:0::1", nil, `ADDR: "2001:db8:0::1" is not written canonically (2001:db8::1)`},
		{"probe icmp 200 3 100 - localhost", nil, `ADDR: "localhost" is not an IP address`},
		{"probe icmp 200 3 100 - " + strings.TrimSpace(strings.Repeat("192.0.2.1 ", 33)), nil, "ADDR takes 1 to 32 ADDR, got 33"},
	} {
		words, err := SplitLine(tc.line)
		var req Request
		if err == nil {
			req, err = Parse(words)
		}
		if tc.want == nil {
			if err == nil || !errors.Is(err, ErrGrammar) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %+v, %v; want an error containing %q", tc.line, req, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if len(req.Args) != len(tc.want) {
			t.Errorf("%q: args %#v, want %#v", tc.line, req.Args, tc.want)
			continue
		}
		for i := range tc.want {
			if encodeArg(req.Args[i]) != encodeArg(tc.want[i]) || typeName(req.Args[i]) != typeName(tc.want[i]) {
				t.Errorf("%q: arg %d = %#v, want %#v", tc.line, i, req.Args[i], tc.want[i])
			}
		}
		if req.String() != tc.line {
			t.Errorf("%q re-encodes to %q", tc.line, req.String())
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case int:
		return "int"
	case netip.Addr:
		return "addr"
	case string:
		return "word"
	case []int:
		return "ports"
	}
	return "?"
}

func TestNewRequestValidatesLikeTheRemote(t *testing.T) {
	r, err := NewRequest("probe", "tcp", 200, 3, 100, []int{22}, netip.MustParseAddr("192.0.2.1"))
	if err != nil || r.String() != "probe tcp 200 3 100 22 192.0.2.1" {
		t.Fatalf("NewRequest = %q, %v", r.String(), err)
	}
	for _, bad := range [][]any{
		{"tcp", 200, 3, 100, []int{22}, netip.MustParseAddr("fe80::1%eth0")}, // zone: refused
		{"tcp; reboot", 200, 3, 100, []int{22}, netip.MustParseAddr("192.0.2.1")},
		{"tcp", 200, 3, 100, []int{22}, netip.Addr{}}, // invalid address
		{"tcp", 200.5, 3, 100, []int{22}, netip.MustParseAddr("192.0.2.1")},
		{"tcp", -5, 3, 100, []int{22}, netip.MustParseAddr("192.0.2.1")},
	} {
		if r, err := NewRequest("probe", bad...); err == nil {
			t.Errorf("NewRequest(probe, %v) = %q, want an error", bad, r.String())
		}
	}
}

// FuzzCommandLine: no line makes the parser panic, and any accepted line
// re-encodes to exactly itself (so nothing is accepted in a form that
// could mean something else somewhere else).
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"state", "time", "version", "probe icmp 200 3 100 - 192.0.2.1",
		"probe both 1 10 1000 22,5060 2001:db8::1 ::ffff:192.0.2.1 192.0.2.2",
		"probe tcp 200 3 100 022 192.0.2.1", "probe icmp 200 3 100 - ::ffff:c000:201",
		"state;id", "probe icmp 200 3 100 - fe80::1%lo",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitLine(line)
		if err != nil {
			return
		}
		if got := strings.Join(words, " "); got != line {
			t.Fatalf("SplitLine(%q) joins back to %q", line, got)
		}
		req, err := Parse(words)
		if err != nil {
			if !errors.Is(err, ErrGrammar) {
				t.Fatalf("Parse(%q): error not marked ErrGrammar: %v", line, err)
			}
			return
		}
		if got := req.String(); got != line {
			t.Fatalf("%q accepted, re-encodes to %q", line, got)
		}
		again, err := Parse(req.Words())
		if err != nil || again.String() != line {
			t.Fatalf("%q: re-parse gives %q, %v", line, again.String(), err)
		}
	})
}
