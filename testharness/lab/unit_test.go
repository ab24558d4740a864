package lab

import (
	"context"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		comm  string
		state byte
		ppid  int
		start uint64
	}{
		{"42 (kamailio) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10", true, "kamailio", 'S', 1, 123456},
		{"7 (a (b) c) T 3 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0", true, "a (b) c", 'T', 3, 99},
		{"7 (short) S 1 2", false, "", 0, 0, 0},
		{"garbage", false, "", 0, 0, 0},
	} {
		p, ok := parseProcStat(tc.in)
		if ok != tc.ok || (ok && (p.Comm != tc.comm || p.State != tc.state || p.PPid != tc.ppid || p.Start != tc.start)) {
			t.Errorf("parseProcStat(%q) = %+v, %v", tc.in, p, ok)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/pbxlab/node1/disk`: "/tmp/pbxlab/node1/disk",
		`/tmp/a\040b`:            "/tmp/a b",
		`/tmp/x\\y`:              `/tmp/x\\y`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvTextQuotes(t *testing.T) {
	got := envText(map[string]string{"B": "/tmp/pbxlab/x", "A": "it's", "C": ""})
	for _, want := range []string{"A='it'\\''s'\n", "B=/tmp/pbxlab/x\n", "C=''\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("envText lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "A=") > strings.Index(got, "B=") {
		t.Error("envText is not sorted")
	}
}

func TestParseStatusLine(t *testing.T) {
	for in, want := range map[string]int{
		"SIP/2.0 200 OK\r\nVia: x\r\n\r\n": 200,
		"SIP/2.0 503 Service Unavailable":  503,
		"HTTP/1.1 200 OK\r\n":              0,
		"SIP/2.0 abc":                      0,
	} {
		got, err := parseStatusLine(in)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("parseStatusLine(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// Bad fault arguments are refused before anything is touched, so a Lab
// with an empty root is enough.
func TestFaultArgs(t *testing.T) {
	l := &Lab{root: t.TempDir()}
	for _, args := range [][]string{
		{}, {"nonsense"}, {"link-down", "node1"}, {"link-down", "node9", "tel"}, {"link-down", "node1", "eth0"},
		{"link-down", "sw", "tel"}, {"ntp-offset", "5m"}, {"disk-fill", "node1", "101"}, {"disk-fill", "infra", "10"},
		{"sip-code", "node1", "99"}, {"ami", "node1", "explode"}, {"kill", "infra", "kamailio"}, {"freeze", "node3"},
	} {
		if err := l.Fault(context.Background(), args...); err == nil {
			t.Errorf("Fault(%q) accepted", args)
		}
	}
}
