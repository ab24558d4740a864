package ami

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultVersion is the AMI version Asterisk 20 announces (AMI_VERSION in
// include/asterisk/manager.h of the 20 branch is "9.0.0"; 16 says 5.0.x,
// 18 7.0.x). The greeting is "Asterisk Call Manager/" + this.
const DefaultVersion = "9.0.0"

const greetingPrefix = "Asterisk Call Manager/"

// Defaults that copy manager.conf's and manager.c's.
const (
	// DefaultAuthTimeout is manager.conf's authtimeout: a connection that
	// has not logged in by then is closed without a word.
	DefaultAuthTimeout = 30 * time.Second
	// DefaultAuthFailDelay is the sleep(1) action_login() does before it
	// answers a failed login.
	DefaultAuthFailDelay = time.Second
	// DefaultEventInterval is how often the lab's "PBX" emits a background
	// event to logged-in sessions.
	DefaultEventInterval = 300 * time.Millisecond
	// DefaultEventBeforeResponse: every 2nd response after login is
	// preceded by an event, so a client must skip events between its
	// request and the response.
	DefaultEventBeforeResponse = 2

	writeTimeout = 2 * time.Second
)

// CoreState is what CoreStatus (and FullyBooted, core show channels)
// report. Tests change it to drive the check's thresholds.
type CoreState struct {
	CurrentCalls   int // CoreCurrentCalls (Asterisk counts active channels)
	ProcessedCalls int // CoreProcessedCalls
	StartupTime    time.Time
	ReloadTime     time.Time
}

// Config configures a Server. The zero value of every field means its
// default.
type Config struct {
	// Addr is the TCP address Listen binds, default ":5038".
	Addr string
	// Users maps username to secret. Usernames match without regard to
	// case, secrets exactly (authenticate() in manager.c).
	Users map[string]string
	// Version is the AMI version in the greeting, default DefaultVersion.
	// A full greeting ("Asterisk Call Manager/7.0.3") is accepted too.
	Version string
	// AsteriskVersion is what CoreSettings and `core show version` report,
	// default "20.5.0".
	AsteriskVersion string
	// SystemName, when set, appears in every event as Asterisk does when
	// asterisk.conf sets systemname.
	SystemName string
	// Core is the initial CoreState. A zero StartupTime means the time New
	// was called; a zero ReloadTime means StartupTime.
	Core CoreState
	// Location is the zone CoreStatus prints dates in (Asterisk uses local
	// time), default time.Local.
	Location *time.Location
	// EventInterval between background events; negative disables them.
	EventInterval time.Duration
	// EventBeforeResponse: every n-th response after login is preceded by
	// an event; negative disables.
	EventBeforeResponse int
	// AuthTimeout closes connections that have not logged in by then.
	AuthTimeout time.Duration
	// AuthFailDelay before a failed login is answered; negative means none.
	AuthFailDelay time.Duration
	// Now replaces the clock (Ping's Timestamp, uptimes), for tests.
	Now func() time.Time
	// Logf receives one line per connection, login and fault; nil discards.
	Logf func(format string, args ...any)
}

// Server is the lab's Asterisk Manager Interface endpoint.
type Server struct {
	cfg Config

	fault     atomic.Int32
	logins    atomic.Int64
	failed    atomic.Int64
	eventSeq  atomic.Uint64
	challenge atomic.Uint64

	mu        sync.Mutex
	core      CoreState
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closed    bool
	done      chan struct{} // closed by Close
	tickOnce  sync.Once
	stopCtx   func() bool

	wg sync.WaitGroup
}

// ErrServerClosed is returned by Serve and Listen after Close.
var ErrServerClosed = errors.New("ami: server closed")

// New returns a Server for cfg with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = ":5038"
	}
	cfg.Version = strings.TrimPrefix(strings.TrimSpace(cfg.Version), greetingPrefix)
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.AsteriskVersion == "" {
		cfg.AsteriskVersion = "20.5.0"
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.EventInterval == 0 {
		cfg.EventInterval = DefaultEventInterval
	}
	if cfg.EventBeforeResponse == 0 {
		cfg.EventBeforeResponse = DefaultEventBeforeResponse
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.AuthFailDelay == 0 {
		cfg.AuthFailDelay = DefaultAuthFailDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	users := make(map[string]string, len(cfg.Users))
	for u, p := range cfg.Users {
		users[u] = p
	}
	cfg.Users = users

	core := cfg.Core
	if core.StartupTime.IsZero() {
		core.StartupTime = cfg.Now()
	}
	if core.ReloadTime.IsZero() {
		core.ReloadTime = core.StartupTime
	}
	return &Server{
		cfg:       cfg,
		core:      core,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		done:      make(chan struct{}),
	}
}

// ListenAndServe runs a Server for cfg until ctx ends, then closes it and
// returns nil. It returns early with the error if the address cannot be
// bound or accepting fails.
func ListenAndServe(ctx context.Context, cfg Config) error {
	s := New(cfg)
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ami: listening on %q failed: %w", s.cfg.Addr, err)
	}
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	err = s.Serve(l)
	if errors.Is(err, ErrServerClosed) {
		return nil
	}
	s.Close()
	return err
}

// Listen binds cfg.Addr and serves in the background until ctx ends or
// Close is called. It returns once the socket is bound, so Addr is valid.
func (s *Server) Listen(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ami: listening on %q failed: %w", s.cfg.Addr, err)
	}
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	stop := context.AfterFunc(ctx, s.Close)
	s.mu.Lock()
	s.stopCtx = stop
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.serve(l); err != nil && !errors.Is(err, ErrServerClosed) {
			s.cfg.Logf("ami: accepting on %s failed: %v", l.Addr(), err)
		}
	}()
	return nil
}

// Serve accepts connections on l until Close; it then returns
// ErrServerClosed. The lab uses it with a listener made inside a network
// namespace.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	return s.serve(l)
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) serve(l net.Listener) error {
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	s.tickOnce.Do(s.startTicker)
	s.cfg.Logf("ami: listening on %s", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		ss := newSession(s, c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			ss.run()
			s.mu.Lock()
			delete(s.sessions, ss)
			s.mu.Unlock()
		}()
	}
}

// Addr returns the address of one listener (the one Listen bound), or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		return l.Addr()
	}
	return nil
}

// Close stops accepting, drops every connection and waits for the
// server's goroutines. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.done)
	if s.stopCtx != nil {
		s.stopCtx()
	}
	for l := range s.listeners {
		l.Close()
	}
	for ss := range s.sessions {
		ss.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// SetFault switches the misbehaviour; FaultNone restores normal service.
func (s *Server) SetFault(f Fault) {
	s.cfg.Logf("ami: fault set to %s", f)
	s.fault.Store(int32(f))
}

// Fault returns the current misbehaviour.
func (s *Server) Fault() Fault { return Fault(s.fault.Load()) }

// SetCore replaces what CoreStatus reports; zero times are kept as they were.
func (s *Server) SetCore(c CoreState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.StartupTime.IsZero() {
		c.StartupTime = s.core.StartupTime
	}
	if c.ReloadTime.IsZero() {
		c.ReloadTime = s.core.ReloadTime
	}
	s.core = c
}

// Core returns what CoreStatus reports.
func (s *Server) Core() CoreState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core
}

// Logins counts successful logins since New.
func (s *Server) Logins() int64 { return s.logins.Load() }

// FailedLogins counts refused logins since New.
func (s *Server) FailedLogins() int64 { return s.failed.Load() }

// Sessions counts open connections.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Emit pushes ev to every logged-in session whose event mask takes its
// class, each as one write between whole messages. It returns how many
// sessions got it.
func (s *Server) Emit(ev Event) int {
	return s.broadcast(ev)
}

func (s *Server) broadcast(ev Event) int {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	n := 0
	for _, ss := range list {
		if ss.sendEvent(ev) {
			n++
		}
	}
	return n
}

// nextEvent returns the next background event.
func (s *Server) nextEvent() Event {
	return synthEvent(s.eventSeq.Add(1), s.cfg.Now().Unix())
}

// startTicker emits background events, as a PBX with traffic does.
// Asterisk's events are global, so one ticker feeds every session.
func (s *Server) startTicker() {
	if s.cfg.EventInterval < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.EventInterval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.broadcast(s.nextEvent())
			}
		}
	}()
}

// checkSecret is authenticate()'s plain-text branch.
func (s *Server) checkSecret(user, secret string) (string, bool) {
	for u, p := range s.cfg.Users {
		if asciiEqualFold(u, user) {
			return u, p == secret
		}
	}
	return "", false
}

// secretOf returns the configured secret for user (case-insensitive name).
func (s *Server) secretOf(user string) (string, bool) {
	for u, p := range s.cfg.Users {
		if asciiEqualFold(u, user) {
			return p, true
		}
	}
	return "", false
}
