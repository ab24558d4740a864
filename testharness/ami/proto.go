package ami

import (
	"io"
	"strings"
)

// Limits of Asterisk's request reader (main/manager.c, include/asterisk/manager.h).
const (
	// maxLineLen is the usable part of mansession_session.inbuf[1025]:
	// get_input() gives up on a line once 1024 bytes hold no terminator.
	maxLineLen = 1024
	// maxHeaders is AST_MAX_MANHEADERS; do_message() drops extra lines and
	// answers "Too many lines in message or allocation failure".
	maxHeaders = 128
)

// lineReader splits a client's byte stream into lines exactly as
// get_input() in manager.c does, so odd input (bare \n, \r without \n, NUL
// bytes, overlong lines) is cut where Asterisk would cut it:
//   - "\r\n" or a bare "\n" ends a line; a lone "\r" is data;
//   - when 1024 bytes hold no terminator the line is discarded except its
//     last byte (kept "in case we are in the middle of a CRLF") and the
//     message is marked too long.
type lineReader struct {
	r       io.Reader
	buf     [maxLineLen]byte
	n       int
	tooLong bool // manager.c: s->parsing = MESSAGE_LINE_TOO_LONG
}

func (lr *lineReader) readLine() (string, error) {
	for {
		for x := 0; x < lr.n; x++ {
			var cr int
			switch {
			case lr.buf[x] == '\r' && x+1 < lr.n && lr.buf[x+1] == '\n':
				cr = 2
			case lr.buf[x] == '\n':
				cr = 1
			default:
				continue
			}
			line := string(lr.buf[:x])
			used := x + cr
			copy(lr.buf[:], lr.buf[used:lr.n])
			lr.n -= used
			return line, nil
		}
		if lr.n >= maxLineLen {
			lr.buf[0] = lr.buf[lr.n-1]
			lr.n = 1
			lr.tooLong = true
		}
		m, err := lr.r.Read(lr.buf[lr.n:])
		if m > 0 {
			lr.n += m
			continue
		}
		if err != nil {
			return "", err
		}
	}
}

// request is one client message: the header lines up to the empty line,
// with the two parse errors do_message() reports instead of running it.
type request struct {
	Headers        []string // raw lines, "Name: value" when well formed
	TooManyHeaders bool     // more than maxHeaders lines: the rest was dropped
	LineTooLong    bool     // a line overflowed the 1024-byte buffer
}

// requestReader assembles requests from lines as do_message() does.
type requestReader struct {
	lr lineReader
}

func newRequestReader(r io.Reader) *requestReader {
	return &requestReader{lr: lineReader{r: r}}
}

// next returns the next complete request. An empty line ends a request,
// so a lone "\r\n" is a request without headers (Asterisk answers it with
// "Missing action in request").
func (rr *requestReader) next() (request, error) {
	var req request
	for {
		line, err := rr.lr.readLine()
		if err != nil {
			return req, err
		}
		// Asterisk handles lines as C strings: a NUL ends the line there,
		// and a line starting with NUL counts as the empty line.
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		if line == "" {
			req.LineTooLong = rr.lr.tooLong
			return req, nil
		}
		if len(req.Headers) < maxHeaders {
			req.Headers = append(req.Headers, line)
		} else {
			req.TooManyHeaders = true
		}
	}
}

// clearTooLong resets the too-long mark. manager.c resets it only where it
// answers "line too long" (handle_parse_error), not when the same message
// also had too many lines — so then the next message inherits it.
func (rr *requestReader) clearTooLong() { rr.lr.tooLong = false }

// get returns the value of the first header named name, like
// astman_get_header(): the name matches without regard to ASCII case, must
// be followed directly by ':' and leading blanks of the value are skipped.
func (r request) get(name string) string {
	return r.header(name, false)
}

// getNonEmpty is __astman_get_header(..., GET_HEADER_SKIP_EMPTY), which
// process_message() uses for "Action": an empty "Action:" line is skipped.
func (r request) getNonEmpty(name string) string {
	return r.header(name, true)
}

func (r request) header(name string, skipEmpty bool) string {
	for _, h := range r.Headers {
		if len(h) <= len(name) || h[len(name)] != ':' || !asciiEqualFold(h[:len(name)], name) {
			continue
		}
		v := skipBlanks(h[len(name)+1:])
		if skipEmpty && v == "" {
			continue
		}
		return v
	}
	return ""
}

// asciiEqualFold is strncasecmp: only ASCII letters fold (strings.EqualFold
// would also fold e.g. the Kelvin sign into 'k', which Asterisk does not).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// skipBlanks is ast_skip_blanks(): it skips every byte below 33, not only
// spaces and tabs.
func skipBlanks(s string) string {
	i := 0
	for i < len(s) && s[i] < 33 {
		i++
	}
	return s[i:]
}

// msg builds one outgoing message. Each message goes to the socket in one
// Write so that an event can never land inside a response.
type msg struct {
	b strings.Builder
}

func (m *msg) add(name, value string) *msg {
	m.b.WriteString(name)
	m.b.WriteString(": ")
	m.b.WriteString(value)
	m.b.WriteString("\r\n")
	return m
}

// addID appends "ActionID: id" when the request carried a non-empty one,
// as every Asterisk response does right after "Response:".
func (m *msg) addID(id string) *msg {
	if id != "" {
		m.add("ActionID", id)
	}
	return m
}

func (m *msg) bytes() []byte {
	return []byte(m.b.String() + "\r\n")
}

// response is astman_send_response_full() without a list flag:
// "Response: resp", "ActionID" if any, "Message: text" if any, empty line.
func response(id, resp, text string) []byte {
	m := new(msg).add("Response", resp).addID(id)
	if text != "" {
		m.add("Message", text)
	}
	return m.bytes()
}
