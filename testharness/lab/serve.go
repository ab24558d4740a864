package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"pbxha/testharness/ami"
)

// The daemons below are what `pbxlab serve-ami` and `pbxlab serve-smtp`
// run; the lab starts them inside a namespace with `ip netns exec`, so they
// simply listen.

// AMIOptions configures ServeAMI.
type AMIOptions struct {
	Node      string // shown as the events' SystemName
	Addr      string // listen address, e.g. 0.0.0.0:5038
	UsersFile string // "USER SECRET" lines
	FaultFile string // an ami.Fault name; reread at every connection
	Logf      func(format string, args ...any)
}

// ServeAMI runs the lab's AMI endpoint until ctx ends.
func ServeAMI(ctx context.Context, o AMIOptions) error {
	users, err := readAMIUsers(o.UsersFile)
	if err != nil {
		return err
	}
	srv := ami.New(ami.Config{Addr: o.Addr, Users: users, SystemName: o.Node, Logf: o.Logf})
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("ami: listening on %s: %w", o.Addr, err)
	}
	fl := &faultListener{Listener: l, srv: srv, file: o.FaultFile, logf: o.Logf}
	fl.apply()
	stop := context.AfterFunc(ctx, srv.Close)
	defer stop()
	err = srv.Serve(fl)
	if errors.Is(err, ami.ErrServerClosed) {
		return nil
	}
	return err
}

// faultListener rereads the fault file before each connection is served,
// so `pbxlab fault ami` takes effect for the very next connection without
// a race against a signal handler.
type faultListener struct {
	net.Listener
	srv  *ami.Server
	file string
	logf func(format string, args ...any)
	last atomic.Int32
}

func (f *faultListener) Accept() (net.Conn, error) {
	c, err := f.Listener.Accept()
	if err == nil {
		f.apply()
	}
	return c, err
}

func (f *faultListener) apply() {
	if f.file == "" {
		return
	}
	mode := ami.FaultNone
	if b, err := os.ReadFile(f.file); err == nil {
		if m, err := parseAMIFault(strings.TrimSpace(string(b))); err == nil {
			mode = m
		}
	}
	if f.srv.Fault() != mode {
		f.srv.SetFault(mode)
		if f.logf != nil {
			f.logf("ami: fault mode now %s", mode)
		}
	}
}

func parseAMIFault(s string) (ami.Fault, error) {
	if s == "" {
		return ami.FaultNone, nil
	}
	return ami.ParseFault(s)
}

func readAMIUsers(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ami: reading users: %w", err)
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, s, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("ami: %s: a line is not \"USER SECRET\"", path)
		}
		users[u] = strings.TrimSpace(s)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("ami: %s names no user", path)
	}
	return users, nil
}

// ServeSMTP runs the lab's SMTP sink on addr until ctx ends: it accepts
// every message and stores it in maildir as NNN.eml, with Return-Path and
// one Delivered-To per recipient prepended as a delivering MTA would.
func ServeSMTP(ctx context.Context, addr, maildir string, logf func(format string, args ...any)) error {
	if err := os.MkdirAll(maildir, 0o755); err != nil {
		return err
	}
	be := &sink{dir: maildir, logf: logf}
	s := smtp.NewServer(be)
	s.Addr = addr
	s.Domain = "infra.pbxlab.example"
	s.ReadTimeout = 60 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.MaxMessageBytes = 10 << 20
	s.MaxRecipients = 50
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: listening on %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	err = s.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

type sink struct {
	dir  string
	logf func(format string, args ...any)
	seq  atomic.Uint64
}

func (b *sink) NewSession(_ *smtp.Conn) (smtp.Session, error) { return &sinkSession{be: b}, nil }

type sinkSession struct {
	be   *sink
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "Return-Path: <%s>\r\n", s.from)
	for _, t := range s.to {
		fmt.Fprintf(&msg, "Delivered-To: %s\r\n", t)
	}
	msg.Write(body)
	name := fmt.Sprintf("%d-%04d.eml", time.Now().UnixNano(), s.be.seq.Add(1))
	tmp := filepath.Join(s.be.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, msg.Bytes(), 0o644); err != nil {
		return err
	}
	// The rename makes a message appear whole: a test polling the
	// directory never reads half of one.
	if err := os.Rename(tmp, filepath.Join(s.be.dir, name)); err != nil {
		return err
	}
	if s.be.logf != nil {
		s.be.logf("smtp: stored %s from <%s> to %v (%d bytes)", name, s.from, s.to, len(body))
	}
	return nil
}
