package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// TestFsSyncLab runs check_pbx_fs_sync on node1 against node2's copy of
// the synced directory (pbxha-peer manifest over SSH): in sync, a new file
// not yet pushed, the push through node2's rsync module, a file changed on
// node2 only, and 10 000 new files pushed. The lab's reset re-seeds both
// sync dirs, so nothing is left behind.
func TestFsSyncLab(t *testing.T) {
	l := useLab(t)
	t.Setenv("PBXHA_CONFIG", "")
	creds := l.Creds()
	if creds.RsyncUser == "" || creds.RsyncPassword == "" {
		t.Fatal("the lab has no rsync credentials")
	}
	src, dst := l.SyncDir(lab.Node1), l.SyncDir(lab.Node2)
	cfg1 := l.ConfigPath(lab.Node1)
	check := func(t *testing.T, args ...string) Run {
		t.Helper()
		r := runIn(t, l, lab.Node1, append([]string{"check_pbx_fs_sync", "--config", cfg1}, args...)...)
		t.Logf("%s", r.Out)
		return r
	}
	match := func(t *testing.T, r Run, code int, re string) {
		t.Helper()
		expect(t, r, code, "PBX_FS_SYNC ")
		if !regexp.MustCompile(re).MatchString(r.First) {
			t.Fatalf("first line %q does not match %s\n%s", r.First, re, r.Out)
		}
	}
	// push copies node1's tree into node2's module, as the master's sync
	// job does.
	push := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		node2 := lab.Hosts[1].ClusterIP
		cmd := l.Command(ctx, lab.Node1, "rsync", "-a", "--delete", src+"/",
			fmt.Sprintf("rsync://%s@%s/pbx/", creds.RsyncUser, node2))
		cmd.Env = append(os.Environ(), "RSYNC_PASSWORD="+creds.RsyncPassword)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rsync push: %v\n%s", err, out)
		}
	}
	perf := func(missing, extra, different int) string {
		return fmt.Sprintf(`sync_missing=%d;;;0 sync_extra=%d;;;0 sync_different=%d;;;0 sync_oldest_unsynced_age=[0-9.]+s;900;3600;0$`, missing, extra, different)
	}

	push(t)
	t.Run("in sync", func(t *testing.T) {
		match(t, check(t), 0, `^PBX_FS_SYNC OK - `+regexp.QuoteMeta(src)+`: in sync \([0-9]+ entries\) \| `+perf(0, 0, 0))
	})

	t.Run("a new file not yet on node2", func(t *testing.T) {
		p := filepath.Join(src, "voicemail/default/100/INBOX/msg0001.wav")
		if err := os.WriteFile(p, []byte("RIFF"), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-20 * time.Minute)
		os.Chtimes(p, old, old)
		r := check(t)
		match(t, r, 1, `^PBX_FS_SYNC WARNING - .*: 1 missing on the peer, 0 extra on the peer, 0 different; oldest unsynced change 20m[0-9]+s ago \(warning > 900\) \| `+perf(1, 0, 0))
		if !strings.Contains(r.Out, "\nmissing: voicemail/default/100/INBOX/msg0001.wav") {
			t.Fatalf("the long output does not name the file:\n%s", r.Out)
		}
		push(t)
		match(t, check(t), 0, `^PBX_FS_SYNC OK - .*: in sync`)
	})

	t.Run("a file changed on node2 only", func(t *testing.T) {
		p := filepath.Join(dst, "asterisk/sip.conf")
		if err := os.WriteFile(p, []byte("[general]\ncontext=evil\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := check(t, "--age-warning", "0", "-w", "0")
		match(t, r, 1, `^PBX_FS_SYNC WARNING - .*: 0 missing on the peer, 0 extra on the peer, 1 different \(warning > 0\); oldest unsynced change [0-9]+s ago \| `)
		if !strings.Contains(r.Out, "\ndifferent: asterisk/sip.conf (size ") {
			t.Fatalf("the long output does not say what differs:\n%s", r.Out)
		}
		// The same size and mtime, other content: only --checksum sees it.
		push(t)
		info, _ := os.Stat(filepath.Join(src, "asterisk/sip.conf"))
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.ToUpper(string(b))), 0o644)
		os.Chtimes(p, info.ModTime(), info.ModTime())
		match(t, check(t), 0, `^PBX_FS_SYNC OK - `)
		// Equal mtimes: the age is that of the file, so judge the count.
		r = check(t, "--checksum", "--age-warning", "0", "--age-critical", "0")
		match(t, r, 0, `^PBX_FS_SYNC OK - .*: 0 missing on the peer, 0 extra on the peer, 1 different`)
		if !strings.Contains(r.Out, "\ndifferent: asterisk/sip.conf (content)") {
			t.Fatalf("--checksum does not name the content:\n%s", r.Out)
		}
		push(t) // rsync -a skips it (same size and mtime): say so by checking
		match(t, check(t, "--checksum", "--age-warning", "0", "--age-critical", "0"), 0, `1 different`)
		os.Remove(p)
		push(t)
		match(t, check(t, "--checksum"), 0, `in sync`)
	})

	t.Run("10 000 files, synced", func(t *testing.T) {
		base := filepath.Join(src, "sounds")
		for i := range 10_000 {
			d := filepath.Join(base, fmt.Sprintf("d%02d", i%50))
			if i < 50 {
				os.MkdirAll(d, 0o755)
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d.gsm", i)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := check(t, "--max-list", "3")
		match(t, r, 0, `^PBX_FS_SYNC OK - .*: 10051 missing on the peer, 0 extra on the peer, 0 different; oldest unsynced change [0-9]+s ago \| `+perf(10051, 0, 0))
		if !strings.Contains(r.Out, "\n... and 10048 more") {
			t.Fatalf("the long output is not bounded by --max-list:\n%s", r.Out)
		}
		push(t)
		start := time.Now()
		match(t, check(t), 0, `^PBX_FS_SYNC OK - .*: in sync`)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("10 000 files compared in %s", d)
		}
	})

	t.Run("node2 sees node1's extras the other way", func(t *testing.T) {
		p := filepath.Join(src, "only-on-node1.txt")
		os.WriteFile(p, nil, 0o644)
		r := runIn(t, l, lab.Node2, "check_pbx_fs_sync", "--config", l.ConfigPath(lab.Node2), "-w", "0")
		t.Logf("%s", r.Out)
		match(t, r, 1, `^PBX_FS_SYNC WARNING - `+regexp.QuoteMeta(dst)+`: 0 missing on the peer, 1 extra on the peer, 0 different`)
	})
}
