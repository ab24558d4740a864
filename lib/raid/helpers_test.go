package raid

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbxha/lib/plugin"
)

// corpusDir finds shared/corpus/raid by walking up from the package
// directory. Without it the corpus cases skip, except under CI=true where
// the corpus must be there.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := filepath.Join(dir, "shared", "corpus", "raid")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("shared/corpus/raid not found above the package directory (CI=true: the corpus must be present)")
	}
	t.Skip("shared/corpus/raid not found above the package directory")
	return ""
}

// fakeTWCLI is a tw_cli stand-in: it prints the file of out/ named after
// its arguments, "/" and " " turned into "." ("info c0 unitstatus" ->
// info.c0.unitstatus, "/c0/e0 show all" -> c0.e0.show.all), and fails like
// tw_cli for anything else. Each call's arguments go to the file "calls".
const fakeTWCLI = `#!/bin/sh
d=$(dirname "$0")
printf '%s\n' "$*" >> "$d/calls"
f=$(printf '%s' "$*" | tr ' /' '..' | sed 's/^\.//')
if [ -n "$f" ] && [ -f "$d/out/$f" ]; then cat "$d/out/$f"; exit 0; fi
echo "Error: (fake tw_cli) nothing recorded for: $*" >&2
exit 1
`

// writeFake writes the fake tw_cli serving files (name -> content) and
// returns its path.
func writeFake(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "out", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "tw_cli")
	if err := os.WriteFile(p, []byte(fakeTWCLI), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// corpusTWFiles maps a corpus tw_cli folder onto the names the fake
// serves. The corpus keeps check_raid's names: "show" may be a flattened
// symlink whose content is the name of another file, and the status files
// are "info.c0.X", "info.c.X" or just "X".
func corpusTWFiles(t *testing.T, dirs ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, dir := range dirs {
		read := func(name string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, false
			}
			if target := strings.TrimSpace(string(b)); target != "" && !strings.ContainsAny(target, " \n/") {
				if tb, err := os.ReadFile(filepath.Join(dir, target)); err == nil {
					return tb, true
				}
			}
			return b, true
		}
		if b, ok := read("show"); ok {
			files["show"] = b
		} else if b, ok := read("info"); ok {
			files["show"] = b
		}
		for _, part := range []string{"unitstatus", "drivestatus", "bbustatus"} {
			for _, name := range []string{"info.c0." + part, "info.c." + part, part} {
				if b, ok := read(name); ok {
					files["info.c0."+part] = b
					break
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if n := e.Name(); strings.HasSuffix(n, ".show.all") && strings.Count(n, ".") == 3 && !strings.Contains(n, "eX") {
				b, _ := read(n)
				files[n] = b
			}
		}
	}
	return files
}

// fakeCalls is what the fake at path was asked, one call per entry.
func fakeCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// readDir reads every file of dir into a map for writeFake.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// execute runs the check in-process and splits its output.
func execute(t *testing.T, args ...string) (code int, first, perf string, rest []string) {
	t.Helper()
	var out bytes.Buffer
	code = plugin.Execute(Spec(), append([]string{"--role", "any"}, args...), &out)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	first = lines[0]
	if i := strings.Index(first, " | "); i >= 0 {
		first, perf = first[:i], first[i+3:]
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("invalid perfdata %q: %v", perf, err)
		}
	}
	return code, first, perf, lines[1:]
}
