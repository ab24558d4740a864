package ami

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// session is one AMI connection: session_do() in manager.c.
type session struct {
	srv  *Server
	conn net.Conn

	// wmu serialises writes: a message is written whole while it is held,
	// so background events fall between messages, never inside one.
	wmu        sync.Mutex
	dead       bool // stalled or failed: nothing more is written
	authed     bool
	sendEvents int // manager.c send_events: the session's event mask

	// owned by run's goroutine
	username  string
	challenge string
	responses int // responses sent after login
}

func newSession(srv *Server, c net.Conn) *session {
	// build_mansession() starts every session with send_events = -1 (all).
	return &session{srv: srv, conn: c, sendEvents: -1}
}

func (s *session) logf(format string, args ...any) {
	s.srv.cfg.Logf("ami: %s: "+format, append([]any{s.conn.RemoteAddr()}, args...)...)
}

func (s *session) run() {
	defer s.conn.Close()
	s.logf("connected")
	switch f := s.srv.Fault(); f {
	case FaultNoGreeting:
		s.logf("fault %s: saying nothing", f)
		s.drain()
		return
	case FaultGarbage:
		s.logf("fault %s: sending garbage", f)
		if s.writeRaw(garbage()) == nil {
			s.drain()
		}
		return
	}

	// session_do(): the welcome prompt is a single line, no empty line.
	if s.writeRaw([]byte(greetingPrefix+s.srv.cfg.Version+"\r\n")) != nil {
		return
	}
	rr := newRequestReader(s.conn)
	authDeadline := time.Now().Add(s.srv.cfg.AuthTimeout)
	for {
		if s.isAuthed() {
			s.conn.SetReadDeadline(time.Time{})
		} else {
			s.conn.SetReadDeadline(authDeadline)
		}
		req, err := rr.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !s.isAuthed() {
				s.logf("did not log in within %s; closing", s.srv.cfg.AuthTimeout)
			}
			return
		}
		keep, stalled := s.handle(rr, req)
		if stalled {
			s.drain()
			return
		}
		if !keep {
			return
		}
	}
}

// drain reads and discards until the peer or Close ends the connection:
// the session stays open but deaf, like a hung PBX.
func (s *session) drain() {
	s.conn.SetReadDeadline(time.Time{})
	io.Copy(io.Discard, s.conn)
}

func (s *session) isAuthed() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.authed
}

// writeRaw writes b in one call unless the session went silent.
func (s *session) writeRaw(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(b)
}

func (s *session) writeLocked(b []byte) error {
	if s.dead {
		return io.ErrClosedPipe
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(b); err != nil {
		// process_events()/send_string(): a failed write ends the session.
		s.dead = true
		s.conn.Close()
		return err
	}
	return nil
}

// wants reports whether the session takes events of this class
// (process_events(): readperm and send_events must both cover it; users
// here may read everything).
func (s *session) wantsLocked(class int) bool {
	return s.authed && !s.dead && s.sendEvents&class == class
}

// sendEvent writes ev if the session is logged in and takes its class.
func (s *session) sendEvent(ev Event) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.wantsLocked(classNum(ev.Class)) {
		return false
	}
	return s.writeLocked(ev.encode(s.srv.cfg.SystemName)) == nil
}

// reply writes a response to an action. After login, every n-th response
// is preceded by an event, and FaultStallMidResponse cuts it in half. It
// reports whether the session stalled.
func (s *session) reply(b []byte) (stalled bool) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.authed {
		s.writeLocked(b)
		return false
	}
	s.responses++
	if s.srv.Fault() == FaultStallMidResponse {
		s.logf("fault %s: sending %d of %d bytes, then nothing", FaultStallMidResponse, len(b)/2, len(b))
		s.writeLocked(b[:len(b)/2])
		s.dead = true
		return true
	}
	if k := s.srv.cfg.EventBeforeResponse; k > 0 && s.responses%k == 0 {
		ev := s.srv.nextEvent()
		if s.wantsLocked(classNum(ev.Class)) {
			if s.writeLocked(ev.encode(s.srv.cfg.SystemName)) != nil {
				return false
			}
		}
	}
	s.writeLocked(b)
	return false
}

// handle runs one request (do_message() + process_message()). keep is
// false when the session must end (Logoff, failed login).
func (s *session) handle(rr *requestReader, req request) (keep, stalled bool) {
	id := req.get("ActionID")
	errorf := func(text string) (bool, bool) {
		return true, s.reply(response(id, "Error", text))
	}
	// do_message() checks these before process_message() ever runs.
	if req.TooManyHeaders {
		return errorf("Too many lines in message or allocation failure")
	}
	if req.LineTooLong {
		rr.clearTooLong()
		return errorf("Failed to parse message: line too long")
	}

	action := req.getNonEmpty("Action")
	if action == "" {
		return errorf("Missing action in request")
	}
	name := strings.ToLower(action)
	if !s.isAuthed() && name != "login" && name != "logoff" && name != "challenge" {
		return errorf("Permission denied")
	}

	switch name {
	case "login":
		return s.login(req, id)
	case "logoff":
		// action_logoff() answers, then returns -1: the session ends.
		stalled := s.reply(response(id, "Goodbye", "Thanks for all the fish."))
		s.logf("logged off")
		return false, stalled
	case "challenge":
		return true, s.actionChallenge(req, id)
	case "ping":
		// action_ping(): no Message header, a Timestamp of sec.usec.
		now := s.srv.cfg.Now()
		m := new(msg).add("Response", "Success").addID(id).
			add("Ping", "Pong").
			add("Timestamp", fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000))
		return true, s.reply(m.bytes())
	case "corestatus":
		return true, s.reply(s.coreStatus(id))
	case "coresettings":
		return true, s.reply(s.coreSettings(id))
	case "command":
		return true, s.actionCommand(req, id)
	case "events":
		return true, s.actionEvents(req, id)
	case "listcommands":
		return true, s.reply(listCommands(id))
	}
	// process_message(): the text is built with snprintf into char[512].
	text := "Invalid/unknown command: " + action + ". Use Action: ListCommands to show available commands."
	if len(text) > 511 {
		text = text[:511]
	}
	return errorf(text)
}

// login is action_login() with authenticate().
func (s *session) login(req request, id string) (keep, stalled bool) {
	if s.isAuthed() {
		return true, s.reply(response(id, "Success", "Already authenticated"))
	}
	user := req.get("Username")
	canonical, ok := s.authenticate(req, user)
	if f := s.srv.Fault(); ok && f == FaultRefuseLogin {
		s.logf("fault %s: refusing login of %q", f, user)
		ok = false
	}
	if !ok {
		s.srv.failed.Add(1)
		s.logf("failed to authenticate as %q", user)
		// action_login(): sleep(1), the error, then return -1, which ends
		// the session — a client never gets a second try on a connection.
		if d := s.srv.cfg.AuthFailDelay; d > 0 {
			select {
			case <-time.After(d):
			case <-s.srv.done:
				return false, false
			}
		}
		s.reply(response(id, "Error", "Authentication failed"))
		return false, false
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.authed = true
	s.username = canonical
	if mask := stringsToMask(req.get("Events")); mask >= 0 {
		s.sendEvents = mask
	}
	s.srv.logins.Add(1)
	s.logf("manager %q logged on", canonical)
	if s.writeLocked(response(id, "Success", "Authentication accepted")) != nil {
		return false, false
	}
	// FullyBooted follows at once when the session takes system events;
	// it is appended by action_login() itself, so it has no SystemName.
	if s.sendEvents&perms[0].num != 0 {
		now := s.srv.cfg.Now()
		core := s.srv.Core()
		ev := new(msg).add("Event", "FullyBooted").
			add("Privilege", authorityToStr(perms[0].num)).
			add("Uptime", strconv.FormatInt(secondsSince(now, core.StartupTime), 10)).
			add("LastReload", strconv.FormatInt(secondsSince(now, core.ReloadTime), 10)).
			add("Status", "Fully Booted")
		s.writeLocked(ev.bytes())
	}
	return true, false
}

// authenticate checks a plain Secret or, with "AuthType: MD5", the Key
// md5(challenge + secret) after a Challenge action.
func (s *session) authenticate(req request, user string) (string, bool) {
	if user == "" {
		return "", false
	}
	if asciiEqualFold(req.get("AuthType"), "MD5") {
		secret, found := s.srv.secretOf(user)
		key := req.get("Key")
		if !found || key == "" || s.challenge == "" {
			return "", false
		}
		sum := md5.Sum([]byte(s.challenge + secret))
		if hex.EncodeToString(sum[:]) != key {
			return "", false
		}
		canonical, _ := s.srv.checkSecret(user, secret)
		return canonical, true
	}
	return s.srv.checkSecret(user, req.get("Secret"))
}

// actionChallenge is action_challenge(): one random challenge per session.
func (s *session) actionChallenge(req request, id string) bool {
	if !asciiEqualFold(req.get("AuthType"), "MD5") {
		return s.reply(response(id, "Error", "Must specify AuthType"))
	}
	if s.challenge == "" {
		// ast_random() printed with %ld into char[10]: at most 9 digits.
		s.challenge = strconv.FormatUint(rand.Uint64N(1e9), 10)
	}
	m := new(msg).add("Response", "Success").addID(id).add("Challenge", s.challenge)
	return s.reply(m.bytes())
}

// coreStatus is action_corestatus(): local dates as %Y-%m-%d and %H:%M:%S.
func (s *session) coreStatus(id string) []byte {
	core := s.srv.Core()
	loc := s.srv.cfg.Location
	st, rl := core.StartupTime.In(loc), core.ReloadTime.In(loc)
	return new(msg).add("Response", "Success").addID(id).
		add("CoreStartupDate", st.Format("2006-01-02")).
		add("CoreStartupTime", st.Format("15:04:05")).
		add("CoreReloadDate", rl.Format("2006-01-02")).
		add("CoreReloadTime", rl.Format("15:04:05")).
		add("CoreCurrentCalls", strconv.Itoa(core.CurrentCalls)).
		add("CoreProcessedCalls", strconv.Itoa(core.ProcessedCalls)).
		bytes()
}

// coreSettings is action_coresettings() with a stock Debian-like setup.
func (s *session) coreSettings(id string) []byte {
	return new(msg).add("Response", "Success").addID(id).
		add("AMIversion", s.srv.cfg.Version).
		add("AsteriskVersion", s.srv.cfg.AsteriskVersion).
		add("SystemName", s.srv.cfg.SystemName).
		add("CoreMaxCalls", "0").
		add("CoreMaxLoadAvg", "0.000000").
		add("CoreRunUser", "asterisk").
		add("CoreRunGroup", "asterisk").
		add("CoreMaxFilehandles", "0").
		add("CoreRealTimeEnabled", "No").
		add("CoreCDRenabled", "Yes").
		add("CoreHTTPenabled", "No").
		add("SoundsSearchCustomDir", "No").
		bytes()
}

// actionEvents is action_events() (without broken_events_action).
func (s *session) actionEvents(req request, id string) bool {
	mask := stringsToMask(req.get("EventMask"))
	if mask < 0 {
		return s.reply(response(id, "Error", "Invalid event mask"))
	}
	s.wmu.Lock()
	s.sendEvents = mask
	s.wmu.Unlock()
	state := "Off"
	if mask > 0 {
		state = "On"
	}
	m := new(msg).add("Response", "Success").addID(id).add("Events", state)
	return s.reply(m.bytes())
}

// actionCommand is action_command() as of Asterisk 14+: the output comes
// as "Output:" lines inside the response, not as the old "Response:
// Follows ... --END COMMAND--" block; a CLI failure makes it an Error.
func (s *session) actionCommand(req request, id string) bool {
	cmd := req.get("Command")
	if cmd == "" {
		return s.reply(response(id, "Error", "No command provided"))
	}
	words := strings.Fields(cmd)
	if len(words) >= 2 && (asciiEqualFold(words[0], "module") && (asciiEqualFold(words[1], "load") || asciiEqualFold(words[1], "unload")) ||
		asciiEqualFold(words[0], "restart") && asciiEqualFold(words[1], "gracefully")) {
		return s.reply(response(id, "Error", "Command blacklisted"))
	}
	out, ok := s.cli(words)
	resp := "Success"
	if !ok {
		resp = "Error"
	}
	m := new(msg).add("Response", resp).addID(id).add("Message", "Command output follows")
	// The CLI output loses one trailing newline, then each line becomes an
	// Output header.
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m.add("Output", line)
	}
	return s.reply(m.bytes())
}

// cli answers the few CLI commands the lab needs with Asterisk 20's text.
func (s *session) cli(words []string) (string, bool) {
	joined := strings.ToLower(strings.Join(words, " "))
	core := s.srv.Core()
	switch joined {
	case "core show version":
		return fmt.Sprintf("Asterisk %s built by pbxlab @ pbxlab on a x86_64 running Linux on %s\n",
			s.srv.cfg.AsteriskVersion, core.StartupTime.UTC().Format("2006-01-02 15:04:05 UTC")), true
	case "core show channels":
		var b strings.Builder
		const format = "%-64.64s %-32.32s %-7.7s %-30.30s\n"
		fmt.Fprintf(&b, format, "Channel", "Location", "State", "Application(Data)")
		for i := 0; i < core.CurrentCalls; i++ {
			fmt.Fprintf(&b, format, fmt.Sprintf("PJSIP/%d-%08x", 1001+i, i+1), "600@from-internal:1", "Up", "Echo()")
		}
		fmt.Fprintf(&b, "%d active channel%s\n", core.CurrentCalls, ess(core.CurrentCalls))
		fmt.Fprintf(&b, "%d active call%s\n", core.CurrentCalls, ess(core.CurrentCalls))
		fmt.Fprintf(&b, "%d call%s processed\n", core.ProcessedCalls, ess(core.ProcessedCalls))
		return b.String(), true
	case "core show uptime", "core show uptime seconds":
		now := s.srv.cfg.Now()
		return fmt.Sprintf("System uptime: %d\nLast reload: %d\n",
			secondsSince(now, core.StartupTime), secondsSince(now, core.ReloadTime)), true
	}
	cmd := strings.Join(words, " ")
	return fmt.Sprintf("No such command '%s' (type 'core show help %s' for other possible commands)\n", cmd, cmd), false
}

func ess(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// listCommands is action_listcommands() for the actions this server has.
func listCommands(id string) []byte {
	m := new(msg).add("Response", "Success").addID(id)
	for _, c := range []struct{ name, synopsis, priv string }{
		{"Challenge", "Generate Challenge for MD5 Auth.", "<none>"},
		{"Command", "Execute Asterisk CLI Command.", "command,all"},
		{"CoreSettings", "Show PBX core settings (version etc).", "system,reporting,all"},
		{"CoreStatus", "Show PBX core status variables.", "system,reporting,all"},
		{"Events", "Control Event Flow.", "<none>"},
		{"ListCommands", "List available manager commands.", "<none>"},
		{"Login", "Login Manager.", "<none>"},
		{"Logoff", "Logoff Manager.", "<none>"},
		{"Ping", "Keepalive command.", "<none>"},
	} {
		m.add(c.name, c.synopsis+" (Priv: "+c.priv+")")
	}
	return m.bytes()
}

func secondsSince(now, t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(now.Sub(t) / time.Second)
}

// garbage is what FaultGarbage sends instead of the greeting: random bytes
// that cannot be mistaken for a prompt, ending in a line break so that a
// line-reading client gets a line to reject instead of waiting.
func garbage() []byte {
	b := make([]byte, 64+rand.IntN(192))
	for i := range b {
		b[i] = byte(rand.UintN(256))
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = 0xfe // one line of junk, not several
		}
	}
	if b[0] == 'A' {
		b[0] = 0xff
	}
	return append(b, '\r', '\n')
}
