package rsyncd

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// checkOutput asserts what every result must be, whatever a peer sent: one
// first line with a known state and valid perfdata, and no password.
func checkOutput(t *testing.T, r plugin.Result) {
	t.Helper()
	out := r.Format("PBX_RSYNC")
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "PBX_RSYNC "+r.Overall().String()) {
		t.Fatalf("first line %q", first)
	}
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	if strings.Count(first, "|") > 1 {
		t.Fatalf("a '|' from the peer leaked into %q", first)
	}
	if strings.Contains(out, testPassword) {
		t.Fatalf("the password leaked:\n%s", out)
	}
}

var seeds = []string{
	"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\npbx            \tnode2 synced directory\n@RSYNCD: EXIT\n",
	"@RSYNCD: 31.0\nWelcome\n\npbx\tx\nvoicemail      \t\n@RSYNCD: EXIT\n",
	"@RSYNCD: 30.0\n@ERROR: Unknown module 'pbx'\n",
	"@RSYNCD: 29\n@RSYNCD: AUTHREQD Y2hhbGxlbmdl\n@RSYNCD: OK\n",
	"@RSYNCD: 32.0 md5\n@RSYNCD: AUTHREQD Y2hhbGxlbmdl\n@ERROR: auth failed on module pbx\n",
	"@RSYNCD: 24\npbx\tx\n",
	"@ERROR: access denied\n",
	"SSH-2.0-OpenSSH_9.2p1\r\n",
	"@RSYNC",
	"\x16\x03\x01|\xff\n",
}

// FuzzGreeting: the greeting parser never panics, keeps its numbers
// bounded and what it accepts prints back as it came.
func FuzzGreeting(f *testing.F) {
	for _, s := range seeds {
		line, _, _ := strings.Cut(s, "\n")
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		g, err := ParseGreeting(line)
		if err != nil {
			return
		}
		if g.Protocol < 0 || g.Protocol > maxProtocol || g.Sub > maxProtocol {
			t.Fatalf("%q: %+v", line, g)
		}
		if g2, err := ParseGreeting(g.String()); err != nil || g2.Protocol != g.Protocol || g2.Sub != g.Sub || strings.Join(g2.Digests, " ") != strings.Join(g.Digests, " ") {
			t.Fatalf("%q: %+v prints as %q, which reads back as %+v, %v", line, g, g.String(), g2, err)
		}
	})
}

// FuzzListing feeds a daemon's whole answer to a module-list request
// through the line reader and the parser.
func FuzzListing(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newLineReader(bytes.NewReader(data))
		line, err := r.greeting()
		if err != nil {
			return
		}
		g, err := ParseGreeting(line)
		if err != nil {
			return
		}
		mods, motd, _ := readListing(r, g.Protocol)
		if len(mods)+len(motd) > maxListLines {
			t.Fatalf("%d lines kept", len(mods)+len(motd))
		}
		for _, m := range mods {
			if m.Name == "" || strings.ContainsAny(m.Name, "\t\n") || strings.HasPrefix(m.Name, "@") || strings.HasSuffix(m.Name, " ") {
				t.Fatalf("module %q", m.Name)
			}
			if len(m.Name)+len(m.Comment) > maxLine {
				t.Fatalf("a line longer than %d kept", maxLine)
			}
		}
	})
}

// pipeDialer answers every connection with data, then hangs up; what the
// client writes is read and dropped.
func pipeDialer(data []byte) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			go io.Copy(io.Discard, s)
			s.Write(data)
			s.Close()
		}()
		return c, nil
	}
}

// FuzzProbe runs the whole check (list, login, evaluation) against a peer
// that answers every connection with the same bytes.
func FuzzProbe(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		o := Options{Addr: "192.0.2.1:873", Dialer: pipeDialer(data)}
		obs := Probe(ctx, o, Request{Modules: []string{"pbx", "voicemail"}, Cred: &Credentials{User: "pbxsync", Password: testPassword}, Login: true})
		if ctx.Err() != nil {
			t.Fatalf("the probe ran into the deadline on %q", data)
		}
		checkOutput(t, Evaluate(obs, Policy{Connect: threshold.Pairf("1", "3"), TimeoutState: plugin.Critical, Verbose: 1}))
	})
}
