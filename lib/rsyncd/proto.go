package rsyncd

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/md4"

	"pbxha/lib/plugin"
)

// Protocol lines (clientserver.c).
const (
	// GreetingPrefix starts the daemon's first line and ours.
	GreetingPrefix = "@RSYNCD: "
	// ErrorPrefix starts a refusal; the daemon hangs up after it.
	ErrorPrefix = "@ERROR"
	lineExit    = "@RSYNCD: EXIT"
	lineOK      = "@RSYNCD: OK"
	authReqd    = "@RSYNCD: AUTHREQD "
)

// ClientProtocol is the protocol version we announce: rsync 3.2's, so a
// current daemon negotiates its auth digest from our list rather than
// falling back to MD5. Only the opening exchange is spoken, never the
// transfer protocol, so announcing it commits us to nothing more.
const ClientProtocol = 32

// DefaultDigests is the daemon-auth digest list we announce, in rsync 3.2's
// order of preference (valid_auth_checksums in checksum.c).
var DefaultDigests = []string{"sha512", "sha256", "sha1", "md5", "md4"}

// Greeting is the daemon's first line: "@RSYNCD: 32.0 sha512 sha256 sha1
// md5 md4". Daemons before rsync 3.0 send no ".sub"; before 3.2.7 no
// digest list.
type Greeting struct {
	Protocol int
	Sub      int // -1: none given
	// Digests are the daemon-auth digests it offers. HasDigests tells an
	// empty list ("@RSYNCD: 31.0 ") from none at all: rsync treats them
	// differently (compat.c negotiate_daemon_auth).
	Digests    []string
	HasDigests bool
}

// String renders the greeting as the daemon sent it, normalised.
func (g Greeting) String() string {
	s := GreetingPrefix + strconv.Itoa(g.Protocol)
	if g.Sub >= 0 {
		s += "." + strconv.Itoa(g.Sub)
	}
	if g.HasDigests {
		s += " " + strings.Join(g.Digests, " ")
	}
	return s
}

// maxProtocol bounds the number read, so a peer cannot overflow it; rsync
// itself is at 32.
const maxProtocol = 9999

// GreetingError: the peer sent something that is not an rsync daemon's
// greeting.
type GreetingError struct {
	Got string // what arrived, raw: clean it before printing
}

func (e *GreetingError) Error() string {
	return "not an rsync daemon: " + quote(e.Got, 60)
}

// DaemonError is an "@ERROR..." line: the daemon refused and hangs up.
type DaemonError struct {
	Message string // the line after "@ERROR:" (or "@ERROR"), raw
}

func (e *DaemonError) Error() string { return "daemon said: " + quote(e.Message, 0) }

// ParseGreeting reads the daemon's greeting line (without its line end).
// Like rsync's sscanf("@RSYNCD: %d.%d") it needs the version; unlike it,
// it refuses junk after the numbers, which no rsync sends.
func ParseGreeting(line string) (Greeting, error) {
	g := Greeting{Sub: -1}
	if strings.HasPrefix(line, ErrorPrefix) {
		return g, &DaemonError{Message: errorText(line)}
	}
	rest, ok := strings.CutPrefix(line, GreetingPrefix)
	if !ok {
		return g, &GreetingError{Got: line}
	}
	num, rest := leadingDigits(rest)
	if num == "" {
		return g, &GreetingError{Got: line}
	}
	var err error
	if g.Protocol, err = atoiBounded(num); err != nil {
		return g, &GreetingError{Got: line}
	}
	if r, ok := strings.CutPrefix(rest, "."); ok {
		sub, r2 := leadingDigits(r)
		if sub == "" {
			return g, &GreetingError{Got: line}
		}
		if g.Sub, err = atoiBounded(sub); err != nil {
			return g, &GreetingError{Got: line}
		}
		rest = r2
	}
	switch {
	case rest == "":
	case rest[0] == ' ':
		g.HasDigests = true
		g.Digests = strings.Fields(rest)
	default:
		return g, &GreetingError{Got: line}
	}
	return g, nil
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

func atoiBounded(s string) (int, error) {
	if len(s) > 4 {
		return 0, errors.New("too large")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxProtocol {
		return 0, errors.New("too large")
	}
	return n, nil
}

// errorText is an @ERROR line's message: "@ERROR: Unknown module 'x'" →
// "Unknown module 'x'".
func errorText(line string) string {
	s := strings.TrimPrefix(line, ErrorPrefix)
	s = strings.TrimPrefix(s, ":")
	return strings.TrimSpace(s)
}

// Module is one line of the daemon's module list.
type Module struct {
	Name    string
	Comment string
}

// ParseListLine reads one line of a module listing. The daemon writes
// modules as "%-15s\t%s" (send_listing in clientserver.c): the name padded
// to 15 columns, a tab, the comment. The MOTD comes on the same channel
// before them and cannot be told apart for certain (rsync's man page says
// so); a line without a tab, or with nothing before it, is taken for MOTD.
func ParseListLine(line string) (Module, bool) {
	name, comment, ok := strings.Cut(line, "\t")
	if !ok {
		return Module{}, false
	}
	name = strings.TrimRight(name, " ")
	if name == "" || strings.HasPrefix(name, "@") {
		return Module{}, false
	}
	return Module{Name: name, Comment: comment}, true
}

// Negotiate returns the protocol both sides settle on, as
// exchange_protocols does: the lower version, one less when the side that
// has it is a pre-release (a non-zero sub-protocol). Ours is a release.
func Negotiate(ours int, g Greeting) int {
	sub := max(g.Sub, 0)
	switch {
	case ours > g.Protocol:
		if sub != 0 {
			return g.Protocol - 1
		}
		return g.Protocol
	case ours == g.Protocol && sub != 0:
		return ours - 1
	}
	return ours
}

// Digest names (checksum.c's valid_auth_checksums), plus the legacy MD4
// that daemons use when no digest was negotiated.
const (
	DigestSHA512 = "sha512"
	DigestSHA256 = "sha256"
	DigestSHA1   = "sha1"
	DigestMD5    = "md5"
	DigestMD4    = "md4"
	// DigestMD4Old is CSUM_MD4_OLD: MD4 over a 4-byte zero seed, the
	// password and the challenge. A daemon uses it when the client sent no
	// digest list and the protocol is below 30 (compat.c
	// negotiate_daemon_auth's md4_is_old, checksum.c sum_init).
	DigestMD4Old = "md4-old"
)

// ChooseDigest picks the daemon-auth digest both sides will use.
// offered is what our greeting announced (nil: none); g is the daemon's.
// When both sent lists, it is the first of ours the daemon offers: the
// client takes the daemon's entry that ranks best in its own list, and the
// daemon the first of the client's it supports (recv_negotiate_str,
// parse_negotiate_str), which is the same one. When a side sent no list,
// the daemon falls back by protocol: MD5 from 30, the seeded MD4 below.
func ChooseDigest(offered []string, g Greeting, protocol int) (string, error) {
	if !g.HasDigests || offered == nil {
		if protocol >= 30 {
			return DigestMD5, nil
		}
		return DigestMD4Old, nil
	}
	for _, d := range offered {
		for _, t := range g.Digests {
			if strings.EqualFold(d, t) {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no daemon-auth digest in common: the daemon offers %s, we %s",
		quote(strings.Join(g.Digests, " "), 80), strings.Join(offered, " "))
}

// AuthResponse is the line answering "@RSYNCD: AUTHREQD <challenge>":
// "user base64(digest(password + challenge))", the base64 unpadded
// (auth_client and generate_hash in authenticate.c). An empty user is
// "nobody", as rsync sends it.
//
// Daemons older than protocol 27 (rsync 2.6.0) used a "busted" MD4 that
// differs from DigestMD4Old when seed, password and challenge together are
// a multiple of 64 bytes long; that case is not reproduced.
func AuthResponse(user, password, challenge, digest string) (string, error) {
	if user == "" {
		user = "nobody"
	}
	var h hash.Hash
	switch digest {
	case DigestSHA512:
		h = sha512.New()
	case DigestSHA256:
		h = sha256.New()
	case DigestSHA1:
		h = sha1.New()
	case DigestMD5:
		h = md5.New()
	case DigestMD4:
		h = md4.New()
	case DigestMD4Old:
		h = md4.New()
		h.Write([]byte{0, 0, 0, 0})
	default:
		return "", fmt.Errorf("unsupported daemon-auth digest %q", digest)
	}
	h.Write([]byte(password))
	h.Write([]byte(challenge))
	return user + " " + base64.RawStdEncoding.EncodeToString(h.Sum(nil)), nil
}

// clientGreeting is the line we send: our protocol and, unless offered is
// nil, our digest list.
func clientGreeting(protocol int, offered []string) string {
	s := GreetingPrefix + strconv.Itoa(protocol) + ".0"
	if offered != nil {
		s += " " + strings.Join(offered, " ")
	}
	return s + "\n"
}

// quote shows peer text in messages: at most max bytes of it (120 when
// max <= 0), in quotes, with control bytes and invalid UTF-8 escaped so
// that binary junk stays recognisable, and cleaned for plugin output.
func quote(s string, max int) string {
	if max <= 0 {
		max = 120
	}
	more := ""
	if len(s) > max {
		s, more = s[:max], "..."
	}
	q := strconv.Quote(s) + more
	return plugin.Clean(q, len(q))
}
