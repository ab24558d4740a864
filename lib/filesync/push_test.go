package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/fssync/manifest"
	"pbxha/lib/rsyncd"
	"pbxha/lib/rsyncd/rsyncdtest"
)

// Against a real rsync daemon on loopback (rsyncdtest: module auth is
// writable with a password, ro read-only, open writable without one).

func testConfig(module, password string, dirs ...string) *config.Config {
	return &config.Config{Sync: config.Sync{
		Dirs: dirs, RsyncModule: module, RsyncUser: rsyncdtest.User,
		RsyncPassword: config.Secret{Inline: password},
	}}
}

func opts(d *rsyncdtest.Daemon) Options {
	return Options{Host: "127.0.0.1", Port: d.Port}
}

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tree lists the files below root (relative, sorted) with their content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func push(t *testing.T, cfg *config.Config, o Options) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Push(ctx, cfg, o)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	t.Logf("%s", s)
	return s
}

func TestPushMirrors(t *testing.T) {
	d := rsyncdtest.Start(t)
	src := t.TempDir()
	dst := d.ModuleDir("auth")
	write(t, src, map[string]string{
		"asterisk/extensions.conf":                "[default]\n",
		"voicemail/default/100/INBOX/msg0000.txt": "callerid=1\n",
		"voicemail/default/100/INBOX/msg0000.wav": strings.Repeat("R", 4000),
		rsyncd.CanaryName:                         "the master's own canary, from when it was the slave\n",
	})
	// check_pbx_rsync --canary left one on the slave.
	write(t, dst, map[string]string{rsyncd.CanaryName: "the slave's canary\n", "stale/old.wav": "gone on the master"})
	cfg := testConfig("auth", rsyncdtest.Password, src)

	s := push(t, cfg, opts(d))
	tot := s.Totals()
	if tot.Transferred != 3 || tot.TransferredSize != int64(len("[default]\n")+len("callerid=1\n")+4000) || tot.Deleted < 1 || s.Failed() != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if !strings.HasPrefix(s.String(), fmt.Sprintf("1 dir to module auth on %s: 3 files transferred (4021 bytes), 2 deleted, ", d.Addr)) {
		t.Errorf("summary %q", s)
	}
	got := tree(t, dst)
	want := []string{rsyncd.CanaryName, "asterisk/extensions.conf", "voicemail/default/100/INBOX/msg0000.txt", "voicemail/default/100/INBOX/msg0000.wav"}
	if strings.Join(keys(got), " ") != strings.Join(want, " ") || got[rsyncd.CanaryName] != "the slave's canary\n" {
		t.Fatalf("module holds %q (canary %q); want %q with the slave's canary", keys(got), got[rsyncd.CanaryName], want)
	}
	if _, err := os.Stat(filepath.Join(dst, "stale")); err == nil {
		t.Error("the dir only the slave had survived --delete")
	}

	// A second run: nothing to do.
	s = push(t, cfg, opts(d))
	if tot := s.Totals(); tot.Transferred != 0 || tot.Deleted != 0 || tot.Files != 9 {
		t.Errorf("second run %+v", tot)
	}

	// A voicemail deleted on the master goes on the slave too.
	os.Remove(filepath.Join(src, "voicemail/default/100/INBOX/msg0000.wav"))
	s = push(t, cfg, opts(d))
	if tot := s.Totals(); tot.Deleted != 1 || tot.Transferred != 0 {
		t.Errorf("after a delete %+v", tot)
	}
	if _, err := os.Stat(filepath.Join(dst, "voicemail/default/100/INBOX/msg0000.wav")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deleted voicemail still on the slave: %v", err)
	}
}

// Excludes mean what they mean to check_pbx_fs_sync: after a push, the
// files that did not arrive are exactly those manifest.Excluded names.
func TestPushExcludesAsFsSync(t *testing.T) {
	d := rsyncdtest.Start(t)
	src, dst := t.TempDir(), d.ModuleDir("open")
	names := []string{
		"a.tmp", "sub/b.tmp", "keep.conf", "asterisk/keys/k1", "other/asterisk/keys/k2",
		"cache/x", "deep/cache/y", "deep/cache", "voicemail/.swp/z", "voicemail/n.swp",
	}
	files := map[string]string{}
	for _, n := range names {
		if n == "deep/cache" {
			continue
		}
		files[n] = n
	}
	write(t, src, files)
	// On the slave, excluded files are kept (no --delete-excluded).
	write(t, dst, map[string]string{"slave.tmp": "kept"})
	excl := []string{"*.tmp", "asterisk/keys", "cache/", "*.swp"}
	cfg := testConfig("open", "", src)
	cfg.Sync.Excludes = excl
	cfg.Sync.RsyncUser = ""
	push(t, cfg, opts(d))
	got := tree(t, dst)
	for n := range files {
		dir := false
		excluded := false
		// An entry is excluded when it or a directory above it is.
		parts := strings.Split(n, "/")
		for i := range parts {
			dir = i < len(parts)-1
			if manifest.Excluded(excl, strings.Join(parts[:i+1], "/"), dir) {
				excluded = true
			}
		}
		if _, arrived := got[n]; arrived == excluded {
			t.Errorf("%s: arrived %v, check_pbx_fs_sync excludes it: %v", n, arrived, excluded)
		}
	}
	if got["slave.tmp"] != "kept" {
		t.Error("an excluded file on the slave was deleted")
	}
}

// Several dirs land below their common parent: the module's path.
func TestPushSeveralDirs(t *testing.T) {
	d := rsyncdtest.Start(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "etc/asterisk"), filepath.Join(root, "var/spool/asterisk/voicemail")
	write(t, a, map[string]string{"sip.conf": "x"})
	write(t, b, map[string]string{"default/100/INBOX/msg0000.wav": "y"})
	cfg := testConfig("auth", rsyncdtest.Password, a, b+"/")
	s := push(t, cfg, opts(d))
	if len(s.Dirs) != 2 || s.Totals().Transferred != 2 || !strings.HasSuffix(s.Dirs[1].Dest, "/auth/var/spool/asterisk/voicemail/") {
		t.Fatalf("%+v", s)
	}
	got := tree(t, d.ModuleDir("auth"))
	if strings.Join(keys(got), " ") != "etc/asterisk/sip.conf var/spool/asterisk/voicemail/default/100/INBOX/msg0000.wav" {
		t.Fatalf("module holds %q", keys(got))
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		dirs []string
		want string
	}{
		{[]string{"/var/spool/asterisk/voicemail/"}, "/var/spool/asterisk/voicemail=."},
		{[]string{"/etc/asterisk", "/var/spool/asterisk/voicemail", "/var/lib/asterisk/sounds/custom"}, "/etc/asterisk=etc/asterisk /var/spool/asterisk/voicemail=var/spool/asterisk/voicemail /var/lib/asterisk/sounds/custom=var/lib/asterisk/sounds/custom"},
		{[]string{"/var/spool/asterisk/voicemail", "/var/spool/asterisk/monitor"}, "/var/spool/asterisk/voicemail=voicemail /var/spool/asterisk/monitor=monitor"},
		{[]string{"/srv/pbx", "/srv/pbx/sub"}, "/srv/pbx=. /srv/pbx/sub=sub"},
		{[]string{"/srv/ab", "/srv/a"}, "/srv/ab=ab /srv/a=a"},
	} {
		ts, err := Targets(c.dirs)
		var got []string
		for _, t := range ts {
			got = append(got, t.Dir+"="+t.Rel)
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("Targets(%q) = %q %v; want %s", c.dirs, got, err, c.want)
		}
	}
	for _, c := range []struct {
		dirs []string
		want string
	}{
		{nil, "no [sync] dirs in the config: nothing to push"},
		{[]string{"etc/asterisk"}, `[sync] dirs: "etc/asterisk" is not an absolute path`},
		{[]string{"/a", "/a/"}, `[sync] dirs: "/a/" is listed twice`},
	} {
		if _, err := Targets(c.dirs); err == nil || err.Error() != c.want {
			t.Errorf("Targets(%q): %v; want %s", c.dirs, err, c.want)
		}
	}
}

// An empty dir here (an unmounted spool?) does not wipe the slave's copy.
func TestPushEmptyDirKeepsPeer(t *testing.T) {
	d := rsyncdtest.Start(t)
	src, dst := t.TempDir(), d.ModuleDir("auth")
	write(t, dst, map[string]string{"msg0000.wav": "on the slave"})
	s := push(t, testConfig("auth", rsyncdtest.Password, src), opts(d))
	if !s.Dirs[0].KeptExtra || s.Totals().Deleted != 0 || !strings.Contains(s.String(), "is empty here: nothing deleted on the peer") {
		t.Fatalf("%+v %s", s.Dirs[0], s)
	}
	if got := tree(t, dst); got["msg0000.wav"] != "on the slave" {
		t.Fatalf("the slave's copy: %q", keys(got))
	}
}

func TestPushDryRun(t *testing.T) {
	d := rsyncdtest.Start(t)
	src, dst := t.TempDir(), d.ModuleDir("auth")
	write(t, src, map[string]string{"a": "1", "b/c": "22"})
	write(t, dst, map[string]string{"old": "x"})
	o := opts(d)
	o.DryRun = true
	s := push(t, testConfig("auth", rsyncdtest.Password, src), o)
	if tot := s.Totals(); tot.Transferred != 2 || tot.TransferredSize != 3 || tot.Deleted != 1 || !strings.Contains(s.String(), "2 files to transfer (3 bytes), 1 to delete") {
		t.Fatalf("%+v %s", tot, s)
	}
	if got := keys(tree(t, dst)); strings.Join(got, " ") != "old" {
		t.Fatalf("a dry run changed the module: %q", got)
	}
}

func TestPushFailures(t *testing.T) {
	d := rsyncdtest.Start(t)
	src := t.TempDir()
	write(t, src, map[string]string{"a": "1"})
	ctx := context.Background()
	wrong := "not-the-password-7f3a"
	cases := []struct {
		name string
		cfg  *config.Config
		o    Options
		want string
	}{
		{"wrong password", testConfig("auth", wrong, src), opts(d), src + ": rsync exit 5 (error starting client-server protocol): @ERROR: auth failed on module auth"},
		{"no module", testConfig("nosuch", rsyncdtest.Password, src), opts(d), src + `: rsync exit 5 (error starting client-server protocol): @ERROR: Unknown module 'nosuch'`},
		{"read-only module", testConfig("ro", rsyncdtest.Password, src), opts(d), src + ": rsync exit 1 (syntax or usage error): ERROR: module is read only"},
		{"missing dir", testConfig("auth", rsyncdtest.Password, filepath.Join(src, "nosuch")), opts(d), src + "/nosuch: not pushed: stat " + src + "/nosuch: no such file or directory"},
		{"no rsync", testConfig("auth", rsyncdtest.Password, src), Options{Host: "127.0.0.1", Port: d.Port, Rsync: "rsync-not-there"}, `the sync needs the rsync binary (Debian package rsync): exec: "rsync-not-there": executable file not found in $PATH`},
		{"no peer", testConfig("auth", rsyncdtest.Password, src), Options{}, `: cannot tell the peer: this node is not one of [[nodes]] (set node = "...")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Push(ctx, c.cfg, c.o)
			if err == nil || err.Error() != c.want {
				t.Fatalf("err %v\nwant %s", err, c.want)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(s.String(), wrong) {
				t.Fatal("the password leaked")
			}
		})
	}
	// The connection refused: the port of a closed listener.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err := Push(ctx, testConfig("auth", rsyncdtest.Password, src), Options{Host: "127.0.0.1", Port: port})
	if err == nil || !strings.Contains(err.Error(), "rsync exit 10 (error in socket I/O): rsync: [Receiver] failed to connect to 127.0.0.1") && !strings.Contains(err.Error(), "Connection refused") {
		t.Fatalf("refused: %v", err)
	}
}

// A daemon that accepts and never speaks: the deadline ends rsync (its
// process group killed) soon after it passes.
func TestPushDeadline(t *testing.T) {
	rsyncdtest.Need(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	src := t.TempDir()
	write(t, src, map[string]string{"a": "1"})
	cfg := testConfig("auth", rsyncdtest.Password, src, filepath.Join(src, "second"))
	ctx, cancel := context.WithTimeoutCause(context.Background(), 1500*time.Millisecond, errors.New("the sync's deadline passed"))
	defer cancel()
	t0 := time.Now()
	s, err := Push(ctx, cfg, Options{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port})
	took := time.Since(t0)
	t.Logf("%v after %s", err, took)
	if err == nil || !strings.Contains(err.Error(), src+": rsync stopped after ") || !strings.Contains(err.Error(), "the sync's deadline passed") ||
		!strings.Contains(err.Error(), "1 of 2 dirs not pushed: the sync's deadline passed") || len(s.Dirs) != 1 {
		t.Fatalf("err %v", err)
	}
	if took > 1500*time.Millisecond+WaitDelay+time.Second {
		t.Fatalf("took %s", took)
	}
}

// The password reaches rsync in its environment, never on its command
// line: a stand-in rsync records both.
func TestPasswordNotOnArgv(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	fake := filepath.Join(dir, "rsync")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + rec + ".argv\nprintf '%s' \"$RSYNC_PASSWORD\" > " + rec + ".pw\nprintf 'Number of files: 1\\nTotal transferred file size: 0 bytes\\n'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	write(t, src, map[string]string{"a": "1"})
	t.Setenv("RSYNC_PASSWORD", "from-the-caller")
	const pw = "s3cret-on-no-argv"
	_, err := Push(context.Background(), testConfig("pbx", pw, src), Options{Rsync: fake, Host: "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := os.ReadFile(rec + ".argv")
	got, _ := os.ReadFile(rec + ".pw")
	if strings.Contains(string(argv), pw) || string(got) != pw {
		t.Fatalf("argv %q, RSYNC_PASSWORD %q", argv, got)
	}
	want := "-a\n--stats\n--no-human-readable\n--no-motd\n--delete\n--timeout=60\n--contimeout=10\n--exclude=.pbxha-canary\n--\n" + src + "/\nrsync://pbxsync@192.0.2.2:873/pbx/\n"
	if string(argv) != want {
		t.Fatalf("argv\n%s\nwant\n%s", argv, want)
	}
}

// Figures: many small files, as a voicemail spool.
func TestPushManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	d := rsyncdtest.Start(t)
	src := t.TempDir()
	const n = 5000
	for i := range n {
		p := filepath.Join(src, fmt.Sprintf("default/%d/INBOX/msg%04d.wav", 100+i/50, i%50))
		if i%50 == 0 {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("v", 2000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig("auth", rsyncdtest.Password, src)
	s := push(t, cfg, opts(d))
	if s.Totals().Transferred != n {
		t.Fatalf("%+v", s.Totals())
	}
	first := s.Took
	s = push(t, cfg, opts(d))
	t.Logf("FIGURE: %d files of 2000 bytes: first push %s, unchanged re-push %s", n, first.Round(time.Millisecond), s.Took.Round(time.Millisecond))
}
