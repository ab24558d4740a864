package ami

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// Limits that keep a misbehaving peer from making the check hold unbounded
// memory. Asterisk's own messages stay far below them; a longer line or
// message is cut, not refused, so the framing stays in step with the
// server's.
const (
	// maxGreeting: Asterisk's greeting is about 30 bytes.
	maxGreeting = 1024
	// maxLine is how much of one line is kept; the rest is read and
	// dropped (an event's VarSet value can be long).
	maxLine = 8192
	// maxLines is how many lines of one message are kept.
	maxLines = 1024
)

// GreetingPrefix starts the one-line greeting Asterisk's manager sends on
// every new connection (session_do() in main/manager.c), followed by the
// AMI version: "Asterisk Call Manager/9.0.0".
const GreetingPrefix = "Asterisk Call Manager/"

// GreetingError: the peer sent something that is not Asterisk's greeting.
type GreetingError struct {
	Got string // what arrived instead, raw: clean it before printing
}

func (e *GreetingError) Error() string {
	return "not an Asterisk manager greeting: " + quote(e.Got, 60)
}

// frame is one AMI message: its lines up to the empty line that ends it.
type frame struct {
	lines []string
	cut   bool // a line was cut at maxLine or lines beyond maxLines dropped
}

// first returns the name and value of the frame's first line ("Event",
// "FullyBooted").
func (f frame) first() (name, value string) {
	if len(f.lines) == 0 {
		return "", ""
	}
	name, value, _ = strings.Cut(f.lines[0], ":")
	return strings.TrimSpace(name), strings.TrimSpace(value)
}

// isEvent reports whether the frame is an unsolicited event: Asterisk puts
// "Event:" first in every event it writes.
func (f frame) isEvent() bool {
	name, _ := f.first()
	return strings.EqualFold(name, "Event")
}

// frameReader splits the byte stream of an AMI session into the greeting
// and messages. It reads through a bufio.Reader, so a greeting or a
// message split over several TCP segments (or several TLS records) is
// joined, and bytes that arrive with the end of one message (the
// FullyBooted event right behind the login response) wait for the next
// call. goami2's Client reads the greeting and the login response with a
// single Read each, which fails on exactly those splits.
//
// Deadlines are the connection's: the caller sets them, a read past one
// returns the timeout error.
type frameReader struct {
	br *bufio.Reader
	// pending counts the bytes read of a message that has not ended yet,
	// so a stall can be reported as "stopped mid-message".
	pending int
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 4096)}
}

// greeting reads the greeting line. It fails at the first byte that cannot
// belong to Asterisk's greeting instead of waiting for a line end that a
// peer speaking another protocol may never send; what else already arrived
// goes into the error, to show the user.
func (r *frameReader) greeting() (string, error) {
	var b []byte
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			r.pending = len(b)
			if len(b) > 0 && errors.Is(err, io.EOF) {
				return "", &GreetingError{Got: string(b)}
			}
			return "", err
		}
		if c == '\n' {
			r.pending = 0
			line := strings.TrimSuffix(string(b), "\r")
			if !strings.HasPrefix(line, GreetingPrefix) {
				return "", &GreetingError{Got: line}
			}
			return line, nil
		}
		b = append(b, c)
		n := min(len(b), len(GreetingPrefix))
		if string(b[:n]) != GreetingPrefix[:n] {
			more, _ := r.br.Peek(min(r.br.Buffered(), 64))
			if i := strings.IndexAny(string(more), "\r\n"); i >= 0 {
				more = more[:i]
			}
			return "", &GreetingError{Got: string(b) + string(more)}
		}
		if len(b) > maxGreeting {
			return "", &GreetingError{Got: string(b[:64]) + "..."}
		}
	}
}

// frame reads the next message. Empty lines between messages are skipped.
// A connection that ends inside a message gives io.ErrUnexpectedEOF; one
// that ends between messages gives io.EOF.
func (r *frameReader) frame() (frame, error) {
	var f frame
	for {
		line, cut, err := r.line()
		if err != nil {
			if errors.Is(err, io.EOF) && (len(f.lines) > 0 || r.pending > 0) {
				err = io.ErrUnexpectedEOF
			}
			return f, err
		}
		f.cut = f.cut || cut
		if line == "" {
			if len(f.lines) == 0 && !cut {
				r.pending = 0
				continue
			}
			r.pending = 0
			return f, nil
		}
		if len(f.lines) < maxLines {
			f.lines = append(f.lines, line)
		} else {
			f.cut = true
		}
	}
}

// line reads one line and returns it without its terminator. Asterisk ends
// lines with CRLF; a bare LF is taken too. Bytes beyond maxLine are read
// and dropped (cut is then true).
func (r *frameReader) line() (line string, cut bool, err error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.pending += len(chunk)
		if room := maxLine - len(buf); len(chunk) > room {
			buf = append(buf, chunk[:room]...)
			cut = true
		} else {
			buf = append(buf, chunk...)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && r.pending > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", cut, err
	}
	s := string(buf)
	if !cut {
		s = strings.TrimSuffix(s, "\n")
		s = strings.TrimSuffix(s, "\r")
	}
	return s, cut, nil
}
