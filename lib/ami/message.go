package ami

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/staskobzar/goami2"

	"pbxha/lib/plugin"
)

// quote cleans peer text for output and puts it in quotes.
func quote(s string, max int) string { return `"` + plugin.Clean(s, max) + `"` }

// MalformedError: a message that should have been a response could not be
// parsed as AMI ("Name: value" lines).
type MalformedError struct {
	Line string // the first line that is not "Name: value", raw
}

func (e *MalformedError) Error() string {
	return "malformed AMI message: line " + quote(e.Line, 80)
}

// parseFrame turns a frame into goami2's Message. goami2.Parse wants the
// message's exact wire form, CRLF lines and the empty line, and panics on
// some unterminated input ("Response: x\r" indexes past the end); the
// frame's lines are rebuilt into that form here, so it always gets a
// terminated message.
func parseFrame(f frame) (*goami2.Message, error) {
	var b strings.Builder
	for _, l := range f.lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	m, err := goami2.Parse(b.String())
	if err == nil {
		return m, nil
	}
	for _, l := range f.lines {
		if _, err := goami2.Parse(l + "\r\n\r\n"); err != nil {
			return nil, &MalformedError{Line: l}
		}
	}
	return nil, &MalformedError{Line: strings.Join(f.lines, " ")}
}

// ParseGreeting returns the AMI version from a greeting line
// ("Asterisk Call Manager/9.0.0" → "9.0.0").
func ParseGreeting(line string) (string, error) {
	v, ok := strings.CutPrefix(line, GreetingPrefix)
	if !ok {
		return "", &GreetingError{Got: line}
	}
	return strings.TrimSpace(v), nil
}

// ActionError: Asterisk answered an action with something other than
// success ("Response: Error", "Message: Permission denied").
type ActionError struct {
	Action   string
	Response string // the Response header, raw
	Message  string // the Message header, raw
}

func (e *ActionError) Error() string {
	s := e.Action + " answered " + quote(e.Response, 40)
	if e.Response == "" {
		s = e.Action + " answered without a Response header"
	}
	if e.Message != "" {
		s += ": " + plugin.Clean(e.Message, 0)
	}
	return s
}

// PermissionDenied reports whether Asterisk refused the action for the
// user's privileges (manager.conf read/write), not because it is unwell.
func (e *ActionError) PermissionDenied() bool {
	return strings.EqualFold(strings.TrimSpace(e.Message), "Permission denied")
}

// checkResponse accepts "Response: Success"; anything else is an
// ActionError. Asterisk 1.4 answered Ping with "Response: Pong", which
// also counts for a Ping.
func checkResponse(action string, m *goami2.Message) error {
	resp := strings.TrimSpace(m.Field("Response"))
	if strings.EqualFold(resp, "Success") || strings.EqualFold(action, "Ping") && strings.EqualFold(resp, "Pong") {
		return nil
	}
	return &ActionError{Action: action, Response: resp, Message: m.Field("Message")}
}

// Pong is what a Ping's response says.
type Pong struct {
	// Timestamp is the server's clock when it answered (Asterisk 1.6+,
	// "Timestamp: 1700000000.123456"); zero when absent or unreadable.
	Timestamp time.Time
}

// ParsePong reads a successful Ping response. Asterisk 13 to 22 answer
// "Response: Success", "Ping: Pong", "Timestamp: sec.usec", without
// "Message:"; older ones differ in the first two, and none of it changes
// what the check learns: the server answered.
func ParsePong(m *goami2.Message) Pong {
	var p Pong
	sec, frac, _ := strings.Cut(strings.TrimSpace(m.Field("Timestamp")), ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 || s > 1<<40 {
		return p
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return p
		}
		ns = f * pow10(9-len(frac))
	}
	p.Timestamp = time.Unix(s, ns)
	return p
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// CoreStatus is what the CoreStatus action reports.
type CoreStatus struct {
	CurrentCalls   int
	ProcessedCalls int // -1 when absent (Asterisk before 1.8.?)
	// Startup and Reload are zero when absent or unreadable. Asterisk
	// prints them in its own local time without a zone, so they are read
	// in the zone the caller gives (this host's, normally the PBX's own).
	Startup, Reload time.Time
}

// ParseCoreStatus reads a successful CoreStatus response (action_corestatus
// in main/manager.c: CoreStartupDate/Time, CoreReloadDate/Time as
// %Y-%m-%d and %H:%M:%S, CoreCurrentCalls, CoreProcessedCalls). Without a
// readable CoreCurrentCalls it is an error: that is the number the check
// is for.
func ParseCoreStatus(m *goami2.Message, loc *time.Location) (CoreStatus, error) {
	var cs CoreStatus
	calls := strings.TrimSpace(m.Field("CoreCurrentCalls"))
	n, err := strconv.Atoi(calls)
	if err != nil || n < 0 {
		if calls == "" {
			return cs, errors.New("CoreStatus response has no CoreCurrentCalls")
		}
		return cs, fmt.Errorf("CoreStatus response: CoreCurrentCalls %s is not a count", quote(calls, 40))
	}
	cs.CurrentCalls = n
	cs.ProcessedCalls = -1
	if p, err := strconv.Atoi(strings.TrimSpace(m.Field("CoreProcessedCalls"))); err == nil && p >= 0 {
		cs.ProcessedCalls = p
	}
	cs.Startup = localTime(m.Field("CoreStartupDate"), m.Field("CoreStartupTime"), loc)
	cs.Reload = localTime(m.Field("CoreReloadDate"), m.Field("CoreReloadTime"), loc)
	return cs, nil
}

func localTime(date, clock string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(date)+" "+strings.TrimSpace(clock), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}
