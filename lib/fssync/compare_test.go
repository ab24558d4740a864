package fssync

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/fssync/manifest"
)

// tree writes files (path → content; a trailing "/" makes a directory,
// "->target" a symlink) under a new temp dir, all with mtime at.
func tree(t testing.TB, at time.Time, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(p, "/"):
			os.MkdirAll(full, 0o755)
		case strings.HasPrefix(c, "->"):
			if err := os.Symlink(c[2:], full); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(full, at, at); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// localSource is a manifest of dir read in-process, as the peer's would be.
func localSource(t testing.TB, dir string, h manifest.HashPolicy) Source {
	pr, pw := io.Pipe()
	go func() {
		_, err := manifest.Write(context.Background(), pw, dir, nil, h)
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() { pr.Close() })
	return manifest.NewReader(pr)
}

func TestCompareTrees(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	base := map[string]string{"a/1.wav": "one", "a/2.wav": "two", "conf/x.conf": "x", "link": "->a/1.wav", "empty/": ""}
	t0 := at.Add(-30 * time.Minute)
	cases := []struct {
		name                      string
		local, remote             func(string)
		opts                      Options
		hash                      manifest.HashPolicy
		missing, extra, different int
		oldest                    *time.Time
		list                      []string
	}{
		{name: "same"},
		{name: "missing on peer", local: func(r string) {
			os.WriteFile(filepath.Join(r, "a/3.wav"), []byte("3"), 0o644)
			os.Chtimes(filepath.Join(r, "a/3.wav"), t0, t0)
		}, missing: 1, oldest: &t0, list: []string{"missing: a/3.wav"}},
		{name: "extra on peer", remote: func(r string) {
			os.WriteFile(filepath.Join(r, "a/0.wav"), []byte("0"), 0o644)
		}, extra: 1, list: []string{"extra: a/0.wav"}},
		{name: "size and mtime", remote: func(r string) {
			os.WriteFile(filepath.Join(r, "conf/x.conf"), []byte("changed"), 0o644)
		}, different: 1, list: []string{"different: conf/x.conf (size 1 != 7, mtime newer on the peer by "}},
		{name: "mode", remote: func(r string) { os.Chmod(filepath.Join(r, "a/2.wav"), 0o600) },
			different: 1, oldest: &at, list: []string{"different: a/2.wav (mode 0644 != 0600)"}},
		{name: "link target", remote: func(r string) {
			os.Remove(filepath.Join(r, "link"))
			os.Symlink("a/2.wav", filepath.Join(r, "link"))
		}, different: 1, list: []string{"different: link (link target)"}},
		{name: "type", remote: func(r string) {
			os.RemoveAll(filepath.Join(r, "empty"))
			os.WriteFile(filepath.Join(r, "empty"), nil, 0o644)
		}, different: 1, list: []string{"different: empty (type directory != file)"}},
		{name: "content only found with hashes", remote: func(r string) {
			os.WriteFile(filepath.Join(r, "a/1.wav"), []byte("ONE"), 0o644)
			os.Chtimes(filepath.Join(r, "a/1.wav"), at, at)
		}, hash: manifest.HashPolicy{All: true}, different: 1, list: []string{"different: a/1.wav (content)"}},
		{name: "content unseen without hashes", remote: func(r string) {
			os.WriteFile(filepath.Join(r, "a/1.wav"), []byte("ONE"), 0o644)
			os.Chtimes(filepath.Join(r, "a/1.wav"), at, at)
		}},
		{name: "excluded", remote: func(r string) {
			os.MkdirAll(filepath.Join(r, "tmp"), 0o755)
			os.WriteFile(filepath.Join(r, "tmp/x"), nil, 0o644)
			os.WriteFile(filepath.Join(r, "a/x.part"), nil, 0o644)
		}, opts: Options{Excludes: []string{"tmp/", "*.part"}}},
		{name: "missing dir counts what it holds", local: func(r string) {
			os.MkdirAll(filepath.Join(r, "new/sub"), 0o755)
			os.WriteFile(filepath.Join(r, "new/sub/f"), nil, 0o644)
		}, missing: 3, list: []string{"missing: new", "missing: new/sub"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, r := tree(t, at, base), tree(t, at, base)
			if c.local != nil {
				c.local(l)
			}
			if c.remote != nil {
				c.remote(r)
			}
			o := c.opts
			if o.MaxList == 0 {
				o.MaxList = 2
			}
			d, err := CompareLocal(context.Background(), l, nil, c.hash, localSource(t, r, c.hash), o)
			if err != nil {
				t.Fatal(err)
			}
			if d.Missing != c.missing || d.Extra != c.extra || d.Different != c.different {
				t.Fatalf("missing/extra/different = %d/%d/%d, want %d/%d/%d; %+v", d.Missing, d.Extra, d.Different, c.missing, c.extra, c.different, d.List)
			}
			if c.oldest != nil && (!d.HasOldest || d.Oldest != c.oldest.UnixNano()) {
				t.Fatalf("oldest %v (%v), want %v", time.Unix(0, d.Oldest), d.HasOldest, *c.oldest)
			}
			if c.oldest == nil && c.missing+c.different == 0 && d.HasOldest {
				t.Fatalf("an oldest change with nothing unsynced")
			}
			// A file rewritten on the peer just now has differed since
			// then, not since this side's older mtime.
			if c.name == "size and mtime" && time.Since(time.Unix(0, d.Oldest)) > time.Minute {
				t.Fatalf("oldest %v: the peer's later change should count", time.Unix(0, d.Oldest))
			}
			for i, want := range c.list {
				if i >= len(d.List) {
					t.Fatalf("list %+v, want %q", d.List, c.list)
				}
				got := d.List[i].Kind + ": " + d.List[i].Path
				if d.List[i].What != "" {
					got += " (" + d.List[i].What + ")"
				}
				if !strings.HasPrefix(got, want) {
					t.Fatalf("list[%d] = %q, want %q…", i, got, want)
				}
			}
			if d.Local == 0 || d.Remote == 0 {
				t.Fatalf("nothing compared: %+v", d)
			}
		})
	}
}

func TestCompareLocalWalkError(t *testing.T) {
	r := tree(t, time.Now(), map[string]string{"a": "x"})
	_, err := CompareLocal(context.Background(), filepath.Join(r, "nope"), nil, manifest.HashPolicy{}, localSource(t, r, manifest.HashPolicy{}), Options{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err %v", err)
	}
}
