package filesync

import (
	"strings"
	"testing"
)

// FuzzParseStats: any output parses or fails cleanly; what parses has no
// negative figure, and written back as rsync writes it reads the same.
func FuzzParseStats(f *testing.F) {
	for _, s := range []string{stats327, stats30, "", "Number of files: 1\nTotal transferred file size: 0 bytes\n",
		"Number of files: 1,2,3\nTotal transferred file size: 1.000 bytes\n", "Number of files: 9223372036854775807\nTotal transferred file size: 0\n",
		strings.ReplaceAll(stats327, ",", "'")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStats(in)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error too long (%d bytes): %v", len(err.Error()), err)
			}
			return
		}
		for _, v := range []int64{s.Files, s.Created, s.Deleted, s.Transferred, s.TotalSize, s.TransferredSize, s.Literal, s.Matched, s.Sent, s.Received} {
			if v < 0 {
				t.Fatalf("negative figure in %+v", s)
			}
		}
		if s.Seen < 2 || s.Seen > 10 {
			t.Fatalf("Seen %d", s.Seen)
		}
		back, err := ParseStats(formatStats(s))
		back.Seen = s.Seen
		if err != nil || back != s {
			t.Fatalf("round trip: %+v %v; want %+v", back, err, s)
		}
	})
}
