package filesync

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// rsync 3.2.7, default (grouped digits), with an itemized line before.
const stats327 = `>f+++++++++ asterisk/extensions.conf

Number of files: 1,203 (reg: 1,201, dir: 2)
Number of created files: 1,202 (reg: 1,201, dir: 1)
Number of deleted files: 3 (reg: 3)
Number of regular files transferred: 1,201
Total file size: 3,076,893 bytes
Total transferred file size: 3,076,000 bytes
Literal data: 3,075,000 bytes
Matched data: 1,000 bytes
File list size: 0
File list generation time: 0.005 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 3,149,035
Total bytes received: 22,850

sent 3,149,035 bytes  received 22,850 bytes  6,343,770.00 bytes/sec
total size is 3,076,893  speedup is 0.97
`

// rsync 3.0 (Debian 7): no created/deleted lines, "files transferred".
const stats30 = `
Number of files: 12
Number of files transferred: 4
Total file size: 5120 bytes
Total transferred file size: 2048 bytes
Literal data: 2048 bytes
Matched data: 0 bytes
File list size: 301
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 2523
Total bytes received: 92

sent 2523 bytes  received 92 bytes  5230.00 bytes/sec
total size is 5120  speedup is 1.96
`

func TestParseStats(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want Stats
	}{
		{"rsync 3.2.7", stats327, Stats{Files: 1203, Created: 1202, Deleted: 3, Transferred: 1201, TotalSize: 3076893, TransferredSize: 3076000, Literal: 3075000, Matched: 1000, Sent: 3149035, Received: 22850, Seen: 10}},
		{"rsync 3.0", stats30, Stats{Files: 12, Transferred: 4, TotalSize: 5120, TransferredSize: 2048, Literal: 2048, Sent: 2523, Received: 92, Seen: 8}},
		{"dots as separators, CRLF", strings.ReplaceAll(strings.ReplaceAll(stats327, ",", "."), "\n", "\r\n"), Stats{Files: 1203, Created: 1202, Deleted: 3, Transferred: 1201, TotalSize: 3076893, TransferredSize: 3076000, Literal: 3075000, Matched: 1000, Sent: 3149035, Received: 22850, Seen: 10}},
		{"apostrophes", "Number of files: 1'000'000\nTotal transferred file size: 0 bytes\n", Stats{Files: 1000000, Seen: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStats(c.in)
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
}

func TestParseStatsErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ErrNoStats.Error()},
		{"sent 10 bytes  received 20 bytes\n", ErrNoStats.Error()},
		{"Number of files: 3\n", ErrNoStats.Error()},
		{"Number of files: 1.2K\nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: "1.2K" is not a whole number`},
		{"Number of files: ,12\nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: ",12" is not a whole number`},
		{"Number of files: 12,\nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: "12," is not a whole number`},
		{"Number of files: -1\nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: "-1" is not a whole number`},
		{"Number of files: \nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: no number`},
		{"Number of files: 99999999999999999999\nTotal transferred file size: 0 bytes\n", `rsync --stats: Number of files: "99999999999999999999": out of range`},
		{"Number of files: 1\nNumber of files: 2\nTotal transferred file size: 0 bytes\n", `rsync --stats: "Number of files" twice`},
	} {
		_, err := ParseStats(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseStats(%q): %v; want %s", c.in, err, c.want)
		}
	}
	if _, err := ParseStats(""); !errors.Is(err, ErrNoStats) {
		t.Errorf("empty: %v is not ErrNoStats", err)
	}
}

// formatStats writes s as rsync 3.2 does (grouped digits).
func formatStats(s Stats) string {
	g := func(n int64) string {
		d := fmt.Sprint(n)
		var b strings.Builder
		for i, c := range d {
			if i > 0 && (len(d)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return fmt.Sprintf("\nNumber of files: %s (reg: 1, dir: 1)\nNumber of created files: %s\nNumber of deleted files: %s\nNumber of regular files transferred: %s\nTotal file size: %s bytes\nTotal transferred file size: %s bytes\nLiteral data: %s bytes\nMatched data: %s bytes\nFile list size: 0\nFile list generation time: 0.001 seconds\nTotal bytes sent: %s\nTotal bytes received: %s\n\nsent %s bytes  received %s bytes  1.00 bytes/sec\n",
		g(s.Files), g(s.Created), g(s.Deleted), g(s.Transferred), g(s.TotalSize), g(s.TransferredSize), g(s.Literal), g(s.Matched), g(s.Sent), g(s.Received), g(s.Sent), g(s.Received))
}

func TestFormatRoundTrip(t *testing.T) {
	want := Stats{Files: 1, Created: 22, Deleted: 333, Transferred: 4444, TotalSize: 55555, TransferredSize: 666666, Literal: 7777777, Matched: 88888888, Sent: 999999999, Received: 1 << 62, Seen: 10}
	got, err := ParseStats(formatStats(want))
	if err != nil || got != want {
		t.Fatalf("got %+v %v; want %+v", got, err, want)
	}
}
