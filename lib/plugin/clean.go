package plugin

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPeerText bounds how much of a peer's text (a SIP reason phrase, an AMI
// message, an SQL error) one output line carries.
const MaxPeerText = 200

// Clean makes text that came from the network safe to print in plugin
// output: valid UTF-8, no control characters (newlines and tabs become one
// space), no '|' (which would start perfdata), runs of spaces collapsed, and
// at most max runes (MaxPeerText when max <= 0), cut with "...".
func Clean(s string, max int) string {
	if max <= 0 {
		max = MaxPeerText
	}
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		switch {
		case r == '|':
			r = '/'
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError:
			if r == utf8.RuneError {
				r = '?'
				break
			}
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
				n++
			}
			space = true
			continue
		}
		space = false
		if n >= max {
			return strings.TrimRight(b.String(), " ") + "..."
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimRight(b.String(), " ")
}
