package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry types.
const (
	File    = 'f'
	Dir     = 'd'
	Symlink = 'l'
	Other   = 'o' // device, fifo, socket: compared by type and mode only
)

// Entry is one file, directory or link below a synced directory.
type Entry struct {
	Path   string // relative, slash-separated, clean, never "."
	Type   byte   // File, Dir, Symlink or Other
	Size   int64  // files only; 0 otherwise
	MTime  int64  // unix nanoseconds
	Mode   uint32 // permission bits plus setuid (04000), setgid (02000), sticky (01000)
	Hash   string // lower-case hex SHA-256 of a file's content, "" when not computed
	Target string // a symlink's target
}

// MaxLine bounds one record: a path of PATH_MAX escaped three times over,
// a link target as long, and the numbers. A longer line is refused rather
// than buffered.
const MaxLine = 32 << 10

// Append encodes e as one record line (with its newline) onto b.
//
// Fields are tab-separated: TYPE PATH SIZE MTIME MODE HASH TARGET, with
// MODE in octal, HASH "-" when absent. In PATH and TARGET, bytes below
// 0x20, 0x7f and '%' are written %XX, so a record is always one line and
// a line never starts with '{' (the reply that ends the stream does).
func Append(b []byte, e Entry) []byte {
	b = append(b, e.Type, '\t')
	b = appendEscaped(b, e.Path)
	b = append(b, '\t')
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, e.MTime, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(e.Mode), 8)
	b = append(b, '\t')
	if e.Hash == "" {
		b = append(b, '-')
	} else {
		b = append(b, e.Hash...)
	}
	b = append(b, '\t')
	b = appendEscaped(b, e.Target)
	return append(b, '\n')
}

const hexDigits = "0123456789ABCDEF"

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '%' {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

func unescape(s []byte) (string, error) {
	if bytes.IndexByte(s, '%') < 0 {
		for _, c := range s {
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("unescaped byte %#02x", c)
			}
		}
		return string(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", errors.New("truncated %-escape")
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
			}
			v := byte(hi<<4 | lo)
			if v >= 0x20 && v != 0x7f && v != '%' {
				return "", fmt.Errorf("needless %%-escape %q", s[i:i+3])
			}
			out = append(out, v)
			i += 2
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("unescaped byte %#02x", c)
		default:
			out = append(out, c)
		}
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Parse decodes one record line (without its newline). It accepts only
// what Append writes: a peer cannot smuggle in "..", an absolute path or
// an empty component.
func Parse(line []byte) (Entry, error) {
	var f [7][]byte
	rest := line
	for i := range 6 {
		j := bytes.IndexByte(rest, '\t')
		if j < 0 {
			return Entry{}, fmt.Errorf("%d fields, want 7", i+1)
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	if bytes.IndexByte(rest, '\t') >= 0 {
		return Entry{}, errors.New("more than 7 fields")
	}
	f[6] = rest
	var e Entry
	if len(f[0]) != 1 {
		return e, fmt.Errorf("type %q", f[0])
	}
	e.Type = f[0][0]
	switch e.Type {
	case File, Dir, Symlink, Other:
	default:
		return e, fmt.Errorf("type %q", f[0])
	}
	var err error
	if e.Path, err = unescape(f[1]); err != nil {
		return e, fmt.Errorf("path: %v", err)
	}
	if err := checkPath(e.Path); err != nil {
		return e, fmt.Errorf("path %q: %v", e.Path, err)
	}
	if e.Size, err = parseInt(f[2]); err != nil || e.Size < 0 {
		return e, fmt.Errorf("size %q", f[2])
	}
	if e.Type != File && e.Size != 0 {
		return e, fmt.Errorf("size %d on a non-file", e.Size)
	}
	if e.MTime, err = parseInt(f[3]); err != nil {
		return e, fmt.Errorf("mtime %q", f[3])
	}
	m, err := strconv.ParseUint(string(f[4]), 8, 32)
	if err != nil || m > 07777 || len(f[4]) == 0 || (len(f[4]) > 1 && f[4][0] == '0') {
		return e, fmt.Errorf("mode %q", f[4])
	}
	e.Mode = uint32(m)
	if h := f[5]; !(len(h) == 1 && h[0] == '-') {
		if len(h) != 64 || e.Type != File {
			return e, fmt.Errorf("hash %q", h)
		}
		for _, c := range h {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return e, fmt.Errorf("hash %q", h)
			}
		}
		e.Hash = string(h)
	}
	if e.Target, err = unescape(f[6]); err != nil {
		return e, fmt.Errorf("target: %v", err)
	}
	if e.Target != "" && e.Type != Symlink {
		return e, errors.New("a target on a non-link")
	}
	return e, nil
}

// parseInt accepts a canonical decimal (no '+', no leading zeros), so a
// record re-encodes to exactly its line.
func parseInt(b []byte) (int64, error) {
	s := string(b)
	if s == "" || s == "-0" || (len(s) > 1 && s[0] == '0') || (len(s) > 2 && s[0] == '-' && s[1] == '0') || s[0] == '+' {
		return 0, errors.New("not canonical")
	}
	return strconv.ParseInt(s, 10, 64)
}

func checkPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	if p[0] == '/' {
		return errors.New("absolute")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".", "..":
			return fmt.Errorf("component %q", c)
		}
	}
	return nil
}

// Compare orders paths as filepath.WalkDir visits them: component by
// component, each in byte order, a directory before what it holds. That
// is byte order with '/' sorting below every other byte ("a/b" before
// "a.txt", which plain byte order puts first).
func Compare(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		if x < y {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// Reader reads a manifest stream record by record. A line starting with
// '{' ends it (pbxha-peer's JSON reply); Trailer returns that line.
type Reader struct {
	br      *bufio.Reader
	prev    string
	n       int
	trailer []byte
	done    bool
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next entry, or io.EOF at the end of the stream or at
// the trailer. Entries must come in strictly increasing Compare order:
// the merge depends on it, so a stream out of order is an error, not a
// wrong answer.
func (r *Reader) Next() (Entry, error) {
	if r.done {
		return Entry{}, io.EOF
	}
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > MaxLine {
		return Entry{}, fmt.Errorf("manifest record %d: longer than %d bytes", r.n+1, MaxLine)
	}
	if err == io.EOF && len(line) == 0 {
		r.done = true
		return Entry{}, io.EOF
	}
	if err != nil && err != io.EOF {
		return Entry{}, err
	}
	if len(line) > 0 && line[0] == '{' {
		r.done = true
		r.trailer = append([]byte(nil), line...)
		// The trailer is the last line: read what may follow so the
		// writer is not blocked, and keep a bounded amount of it.
		rest, _ := io.ReadAll(io.LimitReader(r.br, 64<<10))
		r.trailer = append(r.trailer, rest...)
		return Entry{}, io.EOF
	}
	if err == io.EOF {
		return Entry{}, fmt.Errorf("manifest record %d: truncated (no newline)", r.n+1)
	}
	e, perr := Parse(line[:len(line)-1])
	if perr != nil {
		return Entry{}, fmt.Errorf("manifest record %d: %v", r.n+1, perr)
	}
	if r.n > 0 && Compare(r.prev, e.Path) >= 0 {
		return Entry{}, fmt.Errorf("manifest record %d: %q does not sort after %q", r.n+1, e.Path, r.prev)
	}
	r.n++
	r.prev = e.Path
	return e, nil
}

// Trailer is the line that ended the stream ("" when it just ended).
func (r *Reader) Trailer() []byte { return r.trailer }

// Count is how many records were read.
func (r *Reader) Count() int { return r.n }
