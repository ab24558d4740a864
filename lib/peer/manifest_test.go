package peer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbxha/lib/config"
)

// manifest walks only the peer's own [sync] dirs, by index, and ends the
// records with its JSON reply.
func TestServeManifest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.wav"), []byte("abc"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.tmp"), nil, 0o644)
	s := &Server{Config: &config.Config{Sync: config.Sync{Dirs: []string{dir}, Excludes: []string{"*.tmp"}}}}
	for _, tc := range []struct {
		line string
		code int
		out  string // prefix
	}{
		{"manifest 0 none 0", 0, "f\ta.wav\t3\t"},
		{"manifest 0 all 0", 0, "f\ta.wav\t3\t"},
		{"manifest 1 none 0", 1, `{"error":"no sync dir 1`},
		{"manifest 64 none 0", 2, `{"error":"invalid command: manifest: INDEX: 64 is not in 0..63`},
		{"manifest 0 md5 0", 2, `{"error":"invalid command: manifest: CHECKSUM`},
		{"manifest /etc none 0", 2, `{"error":"invalid command: byte '/'`},
	} {
		var b bytes.Buffer
		code := s.ServeLine(context.Background(), tc.line, &b)
		if code != tc.code || !strings.HasPrefix(b.String(), tc.out) {
			t.Errorf("%s: exit %d %q, want %d %q", tc.line, code, b.String(), tc.code, tc.out)
		}
		if code == 0 {
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if len(lines) != 2 || lines[1] != `{"dir":"`+dir+`","entries":1}` {
				t.Errorf("%s: %q", tc.line, lines)
			}
			if strings.Contains(tc.line, "all") != strings.Contains(lines[0], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") {
				t.Errorf("%s: hash %q", tc.line, lines[0])
			}
		}
	}
}
