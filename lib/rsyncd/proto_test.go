package rsyncd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseGreeting(t *testing.T) {
	cases := []struct {
		line string
		want Greeting
		err  string // substring of the error; "" for none
	}{
		// rsync 3.2.7+ (protocol 32 with the daemon-auth digest list).
		{"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4", Greeting{Protocol: 32, Sub: 0, Digests: []string{"sha512", "sha256", "sha1", "md5", "md4"}, HasDigests: true}, ""},
		// rsync 3.1.x.
		{"@RSYNCD: 31.0", Greeting{Protocol: 31, Sub: 0}, ""},
		// rsync 3.0.x.
		{"@RSYNCD: 30.0", Greeting{Protocol: 30, Sub: 0}, ""},
		// rsync 2.6.9: no sub-protocol.
		{"@RSYNCD: 29", Greeting{Protocol: 29, Sub: -1}, ""},
		// A pre-release.
		{"@RSYNCD: 32.1 md5", Greeting{Protocol: 32, Sub: 1, Digests: []string{"md5"}, HasDigests: true}, ""},
		// An empty list is not no list.
		{"@RSYNCD: 31.0 ", Greeting{Protocol: 31, Sub: 0, Digests: []string{}, HasDigests: true}, ""},
		{"@ERROR: access denied to pbx from UNKNOWN (192.0.2.1)", Greeting{}, `daemon said: "access denied to pbx from UNKNOWN (192.0.2.1)"`},
		{"@RSYNCD: EXIT", Greeting{}, `not an rsync daemon: "@RSYNCD: EXIT"`},
		{"@RSYNCD: 31.0abc", Greeting{}, "not an rsync daemon"},
		{"@RSYNCD: 31.", Greeting{}, "not an rsync daemon"},
		{"@RSYNCD: 99999999999999999999", Greeting{}, "not an rsync daemon"},
		{"@RSYNCD:31.0", Greeting{}, "not an rsync daemon"},
		{"SSH-2.0-OpenSSH_9.2p1", Greeting{}, `not an rsync daemon: "SSH-2.0-OpenSSH_9.2p1"`},
		{"", Greeting{}, `not an rsync daemon: ""`},
	}
	for _, tc := range cases {
		g, err := ParseGreeting(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(g, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.line, g, tc.want)
		}
		if g.String() != strings.TrimRight(tc.line, " ") && !(tc.want.HasDigests && len(tc.want.Digests) == 0) {
			t.Errorf("%q: String() = %q", tc.line, g.String())
		}
	}
	var de *DaemonError
	if _, err := ParseGreeting("@ERROR: max connections (10) reached -- try again later"); !errors.As(err, &de) || de.Message != "max connections (10) reached -- try again later" {
		t.Errorf("@ERROR: %v", err)
	}
}

func TestParseListLine(t *testing.T) {
	cases := []struct {
		line string
		want Module
		ok   bool
	}{
		{"pbx            \tnode2 synced directory", Module{"pbx", "node2 synced directory"}, true},
		{"a-very-long-module-name\t", Module{"a-very-long-module-name", ""}, true},
		{"my mod         \tspaces inside", Module{"my mod", "spaces inside"}, true},
		{"Welcome to the sync host", Module{}, false}, // MOTD
		{"", Module{}, false},
		{"\tno name", Module{}, false},
		{"@RSYNCD: EXIT", Module{}, false},
	}
	for _, tc := range cases {
		m, ok := ParseListLine(tc.line)
		if ok != tc.ok || m != tc.want {
			t.Errorf("%q: %+v %v, want %+v %v", tc.line, m, ok, tc.want, tc.ok)
		}
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		ours int
		g    Greeting
		want int
	}{
		{32, Greeting{Protocol: 32, Sub: 0}, 32},
		{32, Greeting{Protocol: 31, Sub: 0}, 31},
		{32, Greeting{Protocol: 29, Sub: -1}, 29},
		{32, Greeting{Protocol: 33, Sub: 0}, 32},
		{32, Greeting{Protocol: 31, Sub: 2}, 30}, // their pre-release of 31
		{32, Greeting{Protocol: 32, Sub: 1}, 31}, // their pre-release of ours
		{30, Greeting{Protocol: 32, Sub: 0}, 30},
	}
	for _, tc := range cases {
		if got := Negotiate(tc.ours, tc.g); got != tc.want {
			t.Errorf("Negotiate(%d, %+v) = %d, want %d", tc.ours, tc.g, got, tc.want)
		}
	}
}

func TestChooseDigest(t *testing.T) {
	list := func(s string) Greeting { return Greeting{Protocol: 32, Digests: strings.Fields(s), HasDigests: true} }
	cases := []struct {
		offered  []string
		g        Greeting
		protocol int
		want     string
		err      bool
	}{
		{DefaultDigests, list("sha512 sha256 sha1 md5 md4"), 32, DigestSHA512, false},
		{DefaultDigests, list("md5 md4"), 32, DigestMD5, false},
		{[]string{"md4", "md5"}, list("sha1 md5 md4"), 32, DigestMD4, false},
		{DefaultDigests, list("blake3"), 32, "", true},
		{DefaultDigests, list(""), 32, "", true},
		// No list from the daemon: MD5 from protocol 30, seeded MD4 below.
		{DefaultDigests, Greeting{Protocol: 31}, 31, DigestMD5, false},
		{DefaultDigests, Greeting{Protocol: 30}, 30, DigestMD5, false},
		{DefaultDigests, Greeting{Protocol: 29}, 29, DigestMD4Old, false},
		// No list from us: the daemon falls back the same way.
		{nil, list("sha512 md5"), 32, DigestMD5, false},
		{nil, list("sha512 md5"), 29, DigestMD4Old, false},
	}
	for _, tc := range cases {
		got, err := ChooseDigest(tc.offered, tc.g, tc.protocol)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ChooseDigest(%v, %v, %d) = %q, %v; want %q (error %v)", tc.offered, tc.g, tc.protocol, got, err, tc.want, tc.err)
		}
	}
}

// Vectors computed independently (Python hashlib) for password "s3cret"
// and challenge "ZmFrZWNoYWxsZW5nZQ"; MD4 and the seeded MD4 are proven
// against a real daemon in daemon_test.go.
func TestAuthResponse(t *testing.T) {
	cases := map[string]string{
		DigestSHA512: "yklDC6jOu/zMXPr1iHUuxFEBYlfgv299XHI+0dDAeoB9YzNyUkogRYACOaS3oPmhpgTq/Gi5cNhZeD2lNjEtmw",
		DigestSHA256: "bFPjkgEdHLrssUIsoVSpeC9DDdYaRZ+1LvpAzKxWpSQ",
		DigestSHA1:   "hZkq+f662KoLJMC1HaH+B4L6Yug",
		DigestMD5:    "TBbgwqXN5t4EbAoT5ojYPw",
	}
	for d, want := range cases {
		got, err := AuthResponse("pbxsync", "s3cret", "ZmFrZWNoYWxsZW5nZQ", d)
		if err != nil || got != "pbxsync "+want {
			t.Errorf("%s: %q, %v; want %q", d, got, err, "pbxsync "+want)
		}
	}
	if got, _ := AuthResponse("", "s3cret", "ZmFrZWNoYWxsZW5nZQ", DigestMD5); !strings.HasPrefix(got, "nobody ") {
		t.Errorf("empty user: %q", got)
	}
	a, _ := AuthResponse("u", "p", "c", DigestMD4)
	b, _ := AuthResponse("u", "p", "c", DigestMD4Old)
	if a == b || len(a) != len("u ")+22 || len(b) != len(a) {
		t.Errorf("md4 %q and md4-old %q", a, b)
	}
	if _, err := AuthResponse("u", "p", "c", "blake3"); err == nil {
		t.Error("unknown digest accepted")
	}
}

func TestClientGreeting(t *testing.T) {
	if got := clientGreeting(32, DefaultDigests); got != "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n" {
		t.Errorf("%q", got)
	}
	if got := clientGreeting(29, nil); got != "@RSYNCD: 29.0\n" {
		t.Errorf("%q", got)
	}
}
