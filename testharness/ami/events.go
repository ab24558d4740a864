package ami

import (
	"fmt"
	"strconv"
	"strings"
)

// Header is one "Name: value" line of an event.
type Header struct {
	Name, Value string
}

// Event is an unsolicited message pushed to logged-in sessions.
type Event struct {
	Name string
	// Class is the event's manager class ("system", "call", "dialplan",
	// ...); empty means "system". It decides the Privilege header and
	// whether a session that narrowed its event mask gets the event.
	Class   string
	Headers []Header
}

// Event classes (EVENT_FLAG_* in include/asterisk/manager.h) in the order
// of perms[] in manager.c, which is also the order authority_to_str()
// prints them in.
var perms = []struct {
	num   int
	label string
}{
	{1 << 0, "system"},
	{1 << 1, "call"},
	{1 << 2, "log"},
	{1 << 3, "verbose"},
	{1 << 4, "command"},
	{1 << 5, "agent"},
	{1 << 6, "user"},
	{1 << 7, "config"},
	{1 << 8, "dtmf"},
	{1 << 9, "reporting"},
	{1 << 10, "cdr"},
	{1 << 11, "dialplan"},
	{1 << 12, "originate"},
	{1 << 13, "agi"},
	{1 << 15, "cc"},
	{1 << 16, "aoc"},
	{1 << 17, "test"},
	{1 << 18, "security"},
	{1 << 30, "message"},
	{allPerms, "all"},
	{0, "none"},
}

const allPerms = 1<<31 - 1 // INT_MAX, the "all" entry of perms[]

// classNum maps a class label to its flag; unknown labels are "system".
func classNum(label string) int {
	for _, p := range perms[:len(perms)-2] {
		if strings.EqualFold(p.label, label) {
			return p.num
		}
	}
	return perms[0].num
}

// authorityToStr is authority_to_str(): every matching label joined by
// commas. "all" matches any non-zero class, which is why real events read
// "Privilege: system,all".
func authorityToStr(authority int) string {
	var out []string
	for _, p := range perms[:len(perms)-1] {
		if authority&p.num != 0 {
			out = append(out, p.label)
		}
	}
	if len(out) == 0 {
		return "<none>"
	}
	return strings.Join(out, ",")
}

// stringsToMask is strings_to_mask(), used for Login's "Events" header and
// the Events action: empty → -1 (leave as is), digits → that number,
// ast_false words → 0, ast_true words → everything, else a class list.
func stringsToMask(s string) int {
	if s == "" {
		return -1
	}
	if strings.Trim(s, "0123456789") == "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return allPerms // atoi() would overflow; treat as "everything"
		}
		return n
	}
	switch strings.ToLower(s) {
	case "no", "false", "n", "f", "0", "off": // ast_false()
		return 0
	case "yes", "true", "y", "t", "1", "on": // ast_true()
		m := 0
		for _, p := range perms {
			m |= p.num
		}
		return m
	}
	m := 0
	for _, p := range perms {
		if inString(s, p.label) {
			m |= p.num
		}
	}
	return m
}

// inString is ast_instring(big, small, ','), quirks included: a token
// before a comma matches when small starts with it (so "sys,call" grants
// "system"), only the last token must match exactly, and a trailing comma
// ends the search without a match.
func inString(big, small string) bool {
	val := big
	for {
		i := strings.IndexByte(val, ',')
		if i < 0 {
			return val == small
		}
		if strings.HasPrefix(small, val[:i]) {
			return true
		}
		val = val[i+1:]
		if val == "" {
			return false
		}
	}
}

// encode writes the event as __manager_event_sessions_va() does: Event,
// Privilege, SystemName when one is set, then the body.
func (e Event) encode(systemName string) []byte {
	m := new(msg).add("Event", clean(e.Name)).add("Privilege", authorityToStr(classNum(e.Class)))
	if systemName != "" {
		m.add("SystemName", systemName)
	}
	for _, h := range e.Headers {
		m.add(clean(h.Name), clean(h.Value))
	}
	return m.bytes()
}

// clean keeps a caller's text from breaking the framing.
func clean(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

// synthEvent makes the n-th background event: a rotation of the events a
// busy PBX emits most, with the fields Asterisk 20 gives them
// (ast_manager_build_channel_state_string_prefix for channel events,
// peerstatus_to_ami in main/endpoints.c for PeerStatus).
func synthEvent(n uint64, unixNow int64) Event {
	ext := 1001 + n%8
	channel := fmt.Sprintf("PJSIP/%d-%08x", ext, n)
	uid := fmt.Sprintf("%d.%d", unixNow, n)
	chanState := []Header{
		{"Channel", channel},
		{"ChannelState", "4"},
		{"ChannelStateDesc", "Ring"},
		{"CallerIDNum", strconv.FormatUint(ext, 10)},
		{"CallerIDName", fmt.Sprintf("Phone %d", ext)},
		{"ConnectedLineNum", "<unknown>"},
		{"ConnectedLineName", "<unknown>"},
		{"Language", "en"},
		{"AccountCode", ""},
		{"Context", "from-internal"},
		{"Exten", "600"},
		{"Priority", "1"},
		{"Uniqueid", uid},
		{"Linkedid", uid},
	}
	switch n % 3 {
	case 0:
		status := "Reachable"
		if n%6 == 3 {
			status = "Unreachable"
		}
		return Event{Name: "PeerStatus", Class: "system", Headers: []Header{
			{"ChannelType", "PJSIP"},
			{"Peer", fmt.Sprintf("PJSIP/%d", ext)},
			{"PeerStatus", status},
		}}
	case 1:
		return Event{Name: "Newchannel", Class: "call", Headers: chanState}
	default:
		return Event{Name: "VarSet", Class: "dialplan", Headers: append(chanState,
			Header{"Variable", "RTPAUDIOQOS"},
			Header{"Value", "ssrc=1234;themssrc=5678;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;rtt=0.000000"},
		)}
	}
}
