package fssync

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/peer"
	"pbxha/lib/peer/peertest"
	"pbxha/lib/plugin"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var b bytes.Buffer
	code := plugin.Execute(Spec(), append([]string{"--role", "any", "-t", "10"}, args...), &b)
	first, _, _ := strings.Cut(b.String(), "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, b.String()
}

func writeConfig(t *testing.T, cfg *config.Config, dirs ...string) string {
	t.Helper()
	cfg.Sync.Dirs = dirs
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

// TestCheckOverSSH runs check_pbx_fs_sync in-process against a peer behind
// a real SSH server (peertest). Both ends run on this host, so a peer
// with the same sync dir is in sync by construction; what differs is
// proven in TestCompareTrees, this proves the wire and the mapping.
func TestCheckOverSSH(t *testing.T) {
	at := time.Now().Add(-time.Hour)
	dir := tree(t, at, map[string]string{"a/1.wav": "one", "b/x.conf": "x", "l": "->a/1.wav"})
	other := tree(t, at, map[string]string{"a/1.wav": "one"})
	peerCfg := &config.Config{Sync: config.Sync{Dirs: []string{dir}}}
	p := peertest.Start(t, peertest.Options{Server: &peer.Server{Config: peerCfg}})

	for _, tc := range []struct {
		name  string
		dirs  []string
		args  []string
		code  int
		first string // regexp
	}{
		{"in sync", []string{dir}, nil, 0,
			`^PBX_FS_SYNC OK - .*: in sync \(5 entries\) \| 001_missing=0;;;0 001_extra=0;;;0 001_different=0;;;0 001_oldest_unsynced_age=0s;900;3600;0$`},
		{"in sync, with checksums", []string{dir}, []string{"--checksum"}, 0, `^PBX_FS_SYNC OK - .*in sync \(5 entries\)`},
		{"in sync, recent checksums", []string{dir}, []string{"--checksum-recent", "2h"}, 0, `^PBX_FS_SYNC OK - .*in sync`},
		{"-d: another dir at that place on the peer", []string{other}, []string{"-d", other}, 3,
			`^PBX_FS_SYNC UNKNOWN - .*the peer's sync dir number 1 is .*, not .*same order`},
		{"paired by position without -d", []string{other}, nil, 0, `^PBX_FS_SYNC OK - .*: 0 missing on the peer, 3 extra on the peer, 0 different \| `},
		{"the peer has fewer dirs", []string{dir, other}, nil, 3,
			`^PBX_FS_SYNC UNKNOWN - .*no sync dir 1`},
		{"-d not a sync dir", []string{dir}, []string{"-d", other}, 3, `^PBX_FS_SYNC UNKNOWN - usage: flag -d/--dir: .* is not one of the \[sync\] dirs`},
		{"bad exclude", []string{dir}, []string{"--exclude", "[x"}, 3, `^PBX_FS_SYNC UNKNOWN - .*flag --exclude`},
		{"bad age", []string{dir}, []string{"--age-warning", "soon"}, 3, `^PBX_FS_SYNC UNKNOWN - .*age-warning`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, p.Config(), tc.dirs...)
			code, first, out := run(t, append([]string{"--config", path}, tc.args...)...)
			t.Log(out)
			if code != tc.code || !regexp.MustCompile(tc.first).MatchString(first) {
				t.Fatalf("exit %d, first line %q; want %d, %s", code, first, tc.code, tc.first)
			}
		})
	}
}

// check_pbx_rsync --canary leaves .pbxha-canary in the slave's module (the
// synced directory there): it is never a difference.
func TestCheckIgnoresRsyncCanary(t *testing.T) {
	at := time.Now().Add(-time.Hour)
	files := map[string]string{"a/1.wav": "one"}
	here := tree(t, at, files)
	files[".pbxha-canary"] = "canary 2026-11-24T02:00:00Z"
	there := tree(t, at, files)
	p := peertest.Start(t, peertest.Options{Server: &peer.Server{Config: &config.Config{Sync: config.Sync{Dirs: []string{there}}}}})
	code, first, out := run(t, "--config", writeConfig(t, p.Config(), here))
	if code != 0 || !strings.Contains(first, ": in sync (") {
		t.Fatalf("exit %d, first line %q; want OK, in sync (the canary ignored)\n%s", code, first, out)
	}
}

func TestCheckPeerDown(t *testing.T) {
	p := peertest.Start(t, peertest.Options{Silent: true})
	path := writeConfig(t, p.Config(), t.TempDir())
	start := time.Now()
	code, first, _ := run(t, "--config", path, "-t", "3")
	if code != 3 || !strings.HasPrefix(first, "PBX_FS_SYNC UNKNOWN - cannot ask the peer") {
		t.Fatalf("exit %d, %q", code, first)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("took %s with -t 3", time.Since(start))
	}
}
