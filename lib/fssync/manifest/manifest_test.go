package manifest

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Path: "a", Type: File, Size: 3, MTime: 1700000000123456789, Mode: 0o644},
		{Path: "dir/sub", Type: Dir, MTime: -5, Mode: 0o2755},
		{Path: "we ird\tname\n%/x", Type: File, Mode: 0o600, Hash: strings.Repeat("ab", 32)},
		{Path: "l", Type: Symlink, Target: "../t a%rget\x01"},
		{Path: "fifo", Type: Other, Mode: 0o4777},
	} {
		line := Append(nil, e)
		if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' || line[0] == '{' {
			t.Fatalf("%+v: not one line: %q", e, line)
		}
		got, err := Parse(line[:len(line)-1])
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if got != e {
			t.Fatalf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, line := range []string{
		"",
		"f\ta\t1\t2\t644\t-",             // 6 fields
		"f\ta\t1\t2\t644\t-\t\tx",        // 8 fields
		"x\ta\t1\t2\t644\t-\t",           // type
		"f\t/etc/passwd\t1\t2\t644\t-\t", // absolute
		"f\ta/../b\t1\t2\t644\t-\t",      // ..
		"f\ta//b\t1\t2\t644\t-\t",        // empty component
		"f\t.\t1\t2\t644\t-\t",           // .
		"f\ta\t-1\t2\t644\t-\t",          // negative size
		"f\ta\t01\t2\t644\t-\t",          // not canonical
		"d\ta\t1\t2\t755\t-\t",           // size on a dir
		"f\ta\t1\t2\t10000\t-\t",         // mode too big
		"f\ta\t1\t2\t0644\t-\t",          // leading zero
		"f\ta\t1\t2\t644\tabc\t",         // hash length
		"f\ta\t1\t2\t644\t-\tx",          // target on a file
		"f\ta%2\t1\t2\t644\t-\t",         // truncated escape
		"f\ta%41\t1\t2\t644\t-\t",        // needless escape
		"f\ta\x01\t1\t2\t644\t-\t",       // raw control byte
	} {
		if e, err := Parse([]byte(line)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", line, e)
		}
	}
}

// TestCompareIsWalkOrder checks the merge's ordering against what
// filepath.WalkDir really does, where byte order differs from it.
func TestCompareIsWalkOrder(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"a/b", "a.txt", "a-b/c", "a/b.c/d", "ab", "A", "a0", "b/a/a"} {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var walked []string
	Walk(context.Background(), root, nil, HashPolicy{}, func(e Entry) error {
		walked = append(walked, e.Path)
		return nil
	})
	sorted := slices.Clone(walked)
	slices.SortFunc(sorted, Compare)
	if !slices.Equal(walked, sorted) {
		t.Fatalf("walk order %q, Compare order %q", walked, sorted)
	}
	if slices.IsSorted(walked) {
		t.Fatalf("fixture does not exercise the '/' rule: %q", walked)
	}
}

func TestWalkAndRead(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "d/skip"), 0o755)
	os.WriteFile(filepath.Join(root, "d/skip/x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "d/f"), []byte("hello"), 0o640)
	os.WriteFile(filepath.Join(root, "d/f.tmp"), []byte("t"), 0o640)
	os.Symlink("d/f", filepath.Join(root, "link"))
	pr, pw := io.Pipe()
	go func() {
		_, err := Write(context.Background(), pw, root, []string{"skip/", "*.tmp"}, HashPolicy{All: true})
		pw.Write([]byte(`{"entries":3}` + "\n"))
		pw.CloseWithError(err)
	}()
	r := NewReader(pr)
	var got []Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 3 || got[0].Path != "d" || got[1].Path != "d/f" || got[2].Path != "link" {
		t.Fatalf("entries %+v", got)
	}
	if got[1].Size != 5 || got[1].Mode != 0o640 || got[1].Hash != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Fatalf("file entry %+v", got[1])
	}
	if got[2].Type != Symlink || got[2].Target != "d/f" {
		t.Fatalf("link entry %+v", got[2])
	}
	if string(r.Trailer()) != `{"entries":3}`+"\n" {
		t.Fatalf("trailer %q", r.Trailer())
	}
}

func TestReaderRefusesDisorder(t *testing.T) {
	in := "f\tb\t0\t0\t644\t-\t\nf\ta\t0\t0\t644\t-\t\n"
	r := NewReader(strings.NewReader(in))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "does not sort after") {
		t.Fatalf("out of order: err %v", err)
	}
	r = NewReader(strings.NewReader("f\ta\t0\t0\t644\t-\t"))
	if _, err := r.Next(); err == nil {
		t.Fatal("a record without newline was accepted")
	}
}

func TestWalkMissingRoot(t *testing.T) {
	err := Walk(context.Background(), filepath.Join(t.TempDir(), "nope"), nil, HashPolicy{}, func(Entry) error { return nil })
	if !os.IsNotExist(err) && !errorsIsNotExist(err) {
		t.Fatalf("err %v", err)
	}
}

func errorsIsNotExist(err error) bool {
	return err != nil && strings.Contains(err.Error(), fs.ErrNotExist.Error())
}

func TestExcluded(t *testing.T) {
	for _, c := range []struct {
		pats []string
		rel  string
		dir  bool
		want bool
	}{
		{[]string{"*.tmp"}, "a/b.tmp", false, true},
		{[]string{"*.tmp"}, "a/b.wav", false, false},
		{[]string{"tmp/"}, "a/tmp", true, true},
		{[]string{"tmp/"}, "a/tmp", false, false},
		{[]string{"/a/*.wav"}, "a/b.wav", false, true},
		{[]string{"a/*.wav"}, "x/a/b.wav", false, false},
	} {
		if got := Excluded(c.pats, c.rel, c.dir); got != c.want {
			t.Errorf("Excluded(%q, %q, %v) = %v", c.pats, c.rel, c.dir, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("f\ta\t1\t2\t644\t-\t"))
	f.Add([]byte("l\tx%0Ay\t0\t5\t0\t-\t../z"))
	f.Add([]byte("f\tq\t1\t2\t644\t" + strings.Repeat("0f", 32) + "\t"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to exactly its line and never
		// names a path outside the directory.
		out := Append(nil, e)
		if string(out[:len(out)-1]) != string(line) {
			t.Fatalf("%q re-encodes as %q", line, out)
		}
		if filepath.IsAbs(e.Path) || !filepath.IsLocal(e.Path) {
			t.Fatalf("%q: path %q escapes", line, e.Path)
		}
	})
}
