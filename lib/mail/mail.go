package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/flock"
)

// SendTimeout bounds one SMTP transaction.
const SendTimeout = 10 * time.Second

// Message is one email; it is also what a spool file holds (JSON).
type Message struct {
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	Date    time.Time `json:"date"`
	Urgent  bool      `json:"urgent,omitempty"`
}

// Send delivers m; on any failure it spools m and returns the send error
// with spooled=true (the mail is safe). Only when spooling fails too is the
// message lost, and then both errors are returned.
func Send(ctx context.Context, s config.SMTP, m Message) (spooled bool, err error) {
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	err = deliver(ctx, s, m)
	if err == nil {
		return false, nil
	}
	if serr := Spool(s.SpoolDir, m); serr != nil {
		return false, errors.Join(err, serr)
	}
	return true, err
}

// Spool writes m to dir as a file of its own (temp file + rename).
func Spool(dir string, m Message) error {
	if dir == "" {
		return errors.New("no smtp.spool_dir")
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s-%s.json", m.Date.UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(rnd[:]))
	if err := cluster.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
		return fmt.Errorf("spooling the mail: %w", err)
	}
	return nil
}

// Flush sends every spooled message, oldest first, removing each once
// sent. It stops at the first failure (the SMTP server is still down) and
// returns how many were sent.
func Flush(ctx context.Context, s config.SMTP) (int, error) {
	if _, err := os.Stat(s.SpoolDir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	unlock, err := LockSpool(ctx, s.SpoolDir)
	if err != nil {
		return 0, err
	}
	defer unlock()
	ents, err := os.ReadDir(s.SpoolDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	sent := 0
	for _, n := range names {
		p := filepath.Join(s.SpoolDir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			return sent, err
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			// A broken file must not block the rest of the spool.
			os.Rename(p, p+".bad")
			continue
		}
		if err := deliver(ctx, s, m); err != nil {
			return sent, err
		}
		if err := os.Remove(p); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// Pending counts spooled messages.
func Pending(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

func deliver(ctx context.Context, s config.SMTP, m Message) error {
	if s.Host == "" {
		return errors.New("no smtp.host in cluster.toml")
	}
	// 8bit keeps the body readable as it is in any mail client and in grep.
	msg := gomail.NewMsg(gomail.WithEncoding(gomail.NoEncoding))
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("from %q: %w", m.From, err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("to %v: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(m.Date)
	msg.SetMessageID()
	if m.Urgent {
		msg.SetImportance(gomail.ImportanceUrgent)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)

	port := s.Port
	if port == 0 {
		port = 25
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(SendTimeout)}
	switch s.TLS {
	case "", "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	}
	if s.Username != "" {
		pw, err := s.Password.Value()
		if err != nil {
			return err
		}
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.Username), gomail.WithPassword(pw))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, SendTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("sending to %s:%d: %w", s.Host, port, err)
	}
	return nil
}

// LockName is the flock beside the spooled mails: every sender of the
// spool (the event handler, pbxha-notify, their --flush) takes it, so two
// of them running at once never send the same message twice. A dot file:
// Pending and Flush skip it.
const LockName = ".flush.lock"

// LockSpool takes the spool's exclusive flock, waiting until ctx ends. The
// kernel drops it when the process dies.
func LockSpool(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the spool %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockName)
	unlock, err := flock.Lock(ctx, path, 0o660)
	if errors.Is(err, flock.ErrHeld) {
		return nil, fmt.Errorf("another process is sending the spool (%s): %w", path, ctx.Err())
	}
	return unlock, err
}
