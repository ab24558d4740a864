package filesync

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Stats is rsync's --stats block (rsync 3.1 and later; the "Number of
// files transferred" of older versions is read as Transferred). Fields
// rsync did not print stay 0; Seen tells which were printed.
type Stats struct {
	Files           int64 // Number of files (everything in the file list)
	Created         int64 // Number of created files
	Deleted         int64 // Number of deleted files
	Transferred     int64 // Number of regular files transferred
	TotalSize       int64 // Total file size, bytes
	TransferredSize int64 // Total transferred file size, bytes
	Literal         int64 // Literal data, bytes
	Matched         int64 // Matched data, bytes
	Sent            int64 // Total bytes sent
	Received        int64 // Total bytes received
	Seen            int   // how many of the fields above were found
}

// Add sums two blocks (one per synced dir).
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Files: s.Files + o.Files, Created: s.Created + o.Created, Deleted: s.Deleted + o.Deleted,
		Transferred: s.Transferred + o.Transferred, TotalSize: s.TotalSize + o.TotalSize,
		TransferredSize: s.TransferredSize + o.TransferredSize, Literal: s.Literal + o.Literal,
		Matched: s.Matched + o.Matched, Sent: s.Sent + o.Sent, Received: s.Received + o.Received,
		Seen: max(s.Seen, o.Seen),
	}
}

// ErrNoStats: rsync's output holds no --stats block.
var ErrNoStats = errors.New("no --stats block in rsync's output")

// statsFields: key is the field's name (two labels share one).
var statsFields = []struct {
	label, key string
	field      func(*Stats) *int64
}{
	{"Number of files", "Files", func(s *Stats) *int64 { return &s.Files }},
	{"Number of created files", "Created", func(s *Stats) *int64 { return &s.Created }},
	{"Number of deleted files", "Deleted", func(s *Stats) *int64 { return &s.Deleted }},
	{"Number of regular files transferred", "Transferred", func(s *Stats) *int64 { return &s.Transferred }},
	{"Number of files transferred", "Transferred", func(s *Stats) *int64 { return &s.Transferred }}, // rsync < 3.1
	{"Total file size", "TotalSize", func(s *Stats) *int64 { return &s.TotalSize }},
	{"Total transferred file size", "TransferredSize", func(s *Stats) *int64 { return &s.TransferredSize }},
	{"Literal data", "Literal", func(s *Stats) *int64 { return &s.Literal }},
	{"Matched data", "Matched", func(s *Stats) *int64 { return &s.Matched }},
	{"Total bytes sent", "Sent", func(s *Stats) *int64 { return &s.Sent }},
	{"Total bytes received", "Received", func(s *Stats) *int64 { return &s.Received }},
}

// ParseStats reads the --stats block out of rsync's standard output
// (other lines — itemized changes, the "sent ... received" trailer — are
// skipped). Numbers may carry digit-group separators ("1,234", "1.234",
// "1'234": rsync groups digits by locale unless --no-h). A line with a
// known label and a value that is not a whole number is an error; a
// block without the "Number of files" and "Total transferred file size"
// lines is ErrNoStats.
func ParseStats(out string) (Stats, error) {
	var s Stats
	found := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		label, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), ": ")
		if !ok {
			continue
		}
		for _, f := range statsFields {
			if label != f.label {
				continue
			}
			if found[f.key] {
				return s, fmt.Errorf("rsync --stats: %q twice", f.label)
			}
			n, err := parseNumber(rest)
			if err != nil {
				return s, fmt.Errorf("rsync --stats: %s: %w", f.label, err)
			}
			found[f.key] = true
			*f.field(&s) = n
			s.Seen++
		}
	}
	if !found["Files"] || !found["TransferredSize"] {
		return s, ErrNoStats
	}
	return s, nil
}

// parseNumber reads the leading number of a --stats value: "1,234 bytes",
// "5 (reg: 3, dir: 2)", "0".
func parseNumber(v string) (int64, error) {
	tok, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	if tok == "" {
		return 0, errors.New("no number")
	}
	var b strings.Builder
	prevDigit := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
			prevDigit = true
		case (c == ',' || c == '.' || c == '\'') && prevDigit && i+1 < len(tok) && tok[i+1] >= '0' && tok[i+1] <= '9':
			// a digit-group separator: between two digits
			prevDigit = false
		default:
			return 0, fmt.Errorf("%s is not a whole number", quoteClip(tok))
		}
	}
	n, err := strconv.ParseInt(b.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: out of range", quoteClip(tok))
	}
	return n, nil
}

// quoteClip quotes s for a message, at most about 60 bytes.
func quoteClip(s string) string {
	q := strconv.Quote(s)
	if len(q) > 60 {
		return q[:56] + `..."`
	}
	return q
}
