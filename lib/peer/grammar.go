package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Limits of the command grammar. A command line is short by nature; these
// bound what a hostile or broken client can make the remote end parse.
const (
	MaxLine  = 2048 // bytes in one command line
	MaxWords = 64   // words in one command line
	MaxWord  = 64   // bytes in one word
)

// wordChars are the only bytes a word may hold: enough for subcommand
// names, decimal numbers, IPv4 and IPv6 addresses (lower-case hex) and
// comma lists. Nothing a shell would treat specially can pass.
const wordChars = "abcdefghijklmnopqrstuvwxyz0123456789.:,-"

// kind is the type of one argument.
type kind int

const (
	kindInt   kind = iota + 1 // a decimal in [min, max]
	kindAddr                  // an IP address without zone
	kindWord                  // one of words
	kindPorts                 // "-" (none) or up to max comma-separated ports
)

// param describes one positional argument. A variadic param is the last
// one and repeats from atLeast to atMost times.
type param struct {
	name     string // as in usage: TIMEOUT_MS
	kind     kind
	min, max int      // kindInt: the range; kindPorts: max is how many
	words    []string // kindWord
	variadic bool
	atLeast  int
	atMost   int
}

// Request is one parsed, validated command. Args holds one typed value per
// argument word: int (kindInt), netip.Addr (kindAddr), string (kindWord),
// []int (kindPorts).
type Request struct {
	Name string
	Args []any
}

// ErrGrammar marks a command the grammar refuses (the remote end answers
// it with exit code 2).
var ErrGrammar = errors.New("invalid command")

func grammarf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrGrammar, fmt.Sprintf(format, args...))
}

// SplitLine splits a command line as it arrives in $SSH_ORIGINAL_COMMAND
// into words: single spaces between words, nothing before the first or
// after the last, only wordChars in a word. No quoting exists, so nothing
// needs unquoting: the line is refused rather than interpreted.
func SplitLine(line string) ([]string, error) {
	if line == "" {
		return nil, grammarf("empty command")
	}
	if len(line) > MaxLine {
		return nil, grammarf("command of %d bytes (at most %d)", len(line), MaxLine)
	}
	words := strings.Split(line, " ")
	if len(words) > MaxWords {
		return nil, grammarf("%d words (at most %d)", len(words), MaxWords)
	}
	for _, w := range words {
		if w == "" {
			return nil, grammarf("words must be separated by exactly one space")
		}
		if err := checkWord(w); err != nil {
			return nil, err
		}
	}
	return words, nil
}

func checkWord(w string) error {
	if w == "" {
		return grammarf("empty word")
	}
	if len(w) > MaxWord {
		return grammarf("a word of %d bytes (at most %d)", len(w), MaxWord)
	}
	for i := 0; i < len(w); i++ {
		if !strings.ContainsRune(wordChars, rune(w[i])) {
			return grammarf("byte %q is not allowed (only a-z, 0-9, '.', ':', ',', '-')", w[i])
		}
	}
	return nil
}

// Parse validates words against the command table: the first word names a
// subcommand, every further word is typed by its position. A value is
// accepted only in its canonical spelling ("7", not "07"; "::1", not
// "0::1"), so a request re-encodes to exactly the words it came from.
func Parse(words []string) (Request, error) {
	if len(words) == 0 {
		return Request{}, grammarf("empty command")
	}
	if len(words) > MaxWords {
		return Request{}, grammarf("%d words (at most %d)", len(words), MaxWords)
	}
	for _, w := range words {
		if err := checkWord(w); err != nil {
			return Request{}, err
		}
	}
	cmd, ok := commands[words[0]]
	if !ok {
		return Request{}, grammarf("unknown command %q (known: %s)", words[0], strings.Join(commandNames(), ", "))
	}
	req := Request{Name: words[0]}
	args := words[1:]
	for i, p := range cmd.params {
		if p.variadic {
			n := len(args) - i
			if n < p.atLeast || n > p.atMost {
				return Request{}, grammarf("%s: %s takes %d to %d %s, got %d (usage: %s)", req.Name, p.name, p.atLeast, p.atMost, p.name, max(n, 0), cmd.usage())
			}
			for _, w := range args[i:] {
				v, err := p.parse(w)
				if err != nil {
					return Request{}, grammarf("%s: %s: %v", req.Name, p.name, err)
				}
				req.Args = append(req.Args, v)
			}
			return req, nil
		}
		if i >= len(args) {
			return Request{}, grammarf("%s: missing %s (usage: %s)", req.Name, p.name, cmd.usage())
		}
		v, err := p.parse(args[i])
		if err != nil {
			return Request{}, grammarf("%s: %s: %v", req.Name, p.name, err)
		}
		req.Args = append(req.Args, v)
	}
	if len(args) > len(cmd.params) {
		return Request{}, grammarf("%s: unexpected argument %q (usage: %s)", req.Name, args[len(cmd.params)], cmd.usage())
	}
	return req, nil
}

func (p param) parse(w string) (any, error) {
	switch p.kind {
	case kindInt:
		n, err := canonicalInt(w)
		if err != nil {
			return nil, err
		}
		if n < p.min || n > p.max {
			return nil, fmt.Errorf("%d is not in %d..%d", n, p.min, p.max)
		}
		return n, nil
	case kindAddr:
		a, err := netip.ParseAddr(w)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", w)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("%q: an address with a zone is not accepted", w)
		}
		if a.String() != w {
			return nil, fmt.Errorf("%q is not written canonically (%s)", w, a)
		}
		return a, nil
	case kindWord:
		if !slices.Contains(p.words, w) {
			return nil, fmt.Errorf("%q is not one of %s", w, strings.Join(p.words, ", "))
		}
		return w, nil
	case kindPorts:
		if w == "-" {
			return []int{}, nil
		}
		parts := strings.Split(w, ",")
		if len(parts) > p.max {
			return nil, fmt.Errorf("%d ports (at most %d)", len(parts), p.max)
		}
		ports := make([]int, 0, len(parts))
		for _, s := range parts {
			n, err := canonicalInt(s)
			if err != nil {
				return nil, err
			}
			if n < 1 || n > 65535 {
				return nil, fmt.Errorf("%d is not a port", n)
			}
			ports = append(ports, n)
		}
		return ports, nil
	}
	return nil, fmt.Errorf("internal error: parameter %s has no type", p.name)
}

// canonicalInt accepts a non-negative decimal without sign or leading
// zeros, small enough not to overflow.
func canonicalInt(w string) (int, error) {
	if w == "" || len(w) > 9 || (len(w) > 1 && w[0] == '0') {
		return 0, fmt.Errorf("%q is not a number", w)
	}
	n := 0
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return 0, fmt.Errorf("%q is not a number", w)
		}
		n = n*10 + int(w[i]-'0')
	}
	return n, nil
}

// Words encodes the request's typed values back into words.
func (r Request) Words() []string {
	words := []string{r.Name}
	for _, a := range r.Args {
		words = append(words, encodeArg(a))
	}
	return words
}

// String is the command line sent to the peer.
func (r Request) String() string { return strings.Join(r.Words(), " ") }

func encodeArg(a any) string {
	switch v := a.(type) {
	case int:
		return strconv.Itoa(v)
	case netip.Addr:
		return v.String()
	case string:
		return v
	case []int:
		if len(v) == 0 {
			return "-"
		}
		s := make([]string, len(v))
		for i, p := range v {
			s[i] = strconv.Itoa(p)
		}
		return strings.Join(s, ",")
	}
	// Unreachable for requests from Parse or NewRequest; an impossible
	// word makes the remote refuse it rather than guess.
	return "?"
}

// NewRequest builds a request from typed values and validates it exactly
// as the remote end will: what the client sends has passed the same
// grammar. Values are int, netip.Addr, string or []int, in the order of
// the command's parameters (a variadic parameter's values one by one).
func NewRequest(name string, args ...any) (Request, error) {
	words := []string{name}
	for _, a := range args {
		switch a.(type) {
		case int, netip.Addr, string, []int:
		default:
			return Request{}, grammarf("%s: argument of type %T", name, a)
		}
		words = append(words, encodeArg(a))
	}
	return Parse(words)
}

func (c *command) usage() string {
	var b strings.Builder
	b.WriteString(c.name)
	for _, p := range c.params {
		b.WriteByte(' ')
		b.WriteString(p.name)
		if p.variadic {
			b.WriteString("...")
		}
	}
	return b.String()
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
