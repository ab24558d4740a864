package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/config"
	"pbxha/lib/mail"
)

// Exit codes. Icinga logs a notification command's output only when it
// exits non-zero, so 0 means the mail is safe: sent, or spooled.
const (
	ExitOK     = 0
	ExitFailed = 1 // the mail is lost (not sent, not spooled), or --flush left mail in the spool
	ExitUsage  = 3 // bad command line or configuration
)

// FlushTimeout bounds sending the spool before the new mail. With one
// SMTP transaction (mail.SendTimeout) that may overrun it and the new
// mail's own, a run stays well inside the NotificationCommand's timeout
// of 1m (notifications.conf).
const FlushTimeout = 20 * time.Second

// LongDateTime is the layout of Icinga's $icinga.long_date_time$.
const LongDateTime = "2006-01-02 15:04:05 -0700"

const usage = `Usage:
  pbxha-notify service --type T --host H --service S --state ST --output TEXT
                       [--long-output TEXT] [--author A] [--comment C]
                       --to ADDRESS [--config FILE]
  pbxha-notify host    --type T --host H --state ST --output TEXT
                       [--long-output TEXT] [--author A] [--comment C]
                       --to ADDRESS [--config FILE]
  pbxha-notify --flush [--config FILE]

Mails an Icinga notification over the SMTP of cluster.toml. The spool is
sent first (oldest first); when SMTP fails the mail is spooled and sent by a
later run or by --flush. Exit 0 when sent or spooled, 1 when the mail is
lost, 3 on bad input.
  --type       $notification.type$: PROBLEM, RECOVERY, ACKNOWLEDGEMENT, CUSTOM,
               FLAPPINGSTART, FLAPPINGEND, DOWNTIMESTART, DOWNTIMEEND, ...
  --host       $host.name$
  --service    $service.name$ (service only)
  --state      $service.state$ or $host.state$
  --output     the check's first line (may be empty)
  --long-output, --author, --comment   when Icinga has them
  --to         $user.email$ (several: comma-separated)
  --config     cluster.toml (default $PBXHA_CONFIG, else /etc/pbxha/cluster.toml)
`

// Notification is what Icinga passes.
type Notification struct {
	Kind       string // "service" or "host"
	Type       string
	Host       string
	Service    string
	State      string
	Output     string
	LongOutput string
	Author     string
	Comment    string
	To         []string
	Time       time.Time
}

// opts are the knobs the tests turn.
type opts struct {
	now          func() time.Time
	flushTimeout time.Duration
}

// Main is pbxha-notify.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, stdout, stderr, opts{now: time.Now, flushTimeout: FlushTimeout})
}

func run(args []string, stdout, stderr io.Writer, o opts) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitUsage
	case "service", "host":
		return notifyCmd(args[0], args[1:], stdout, stderr, o)
	case "flush":
		return flushCmd(args[1:], stdout, stderr, o)
	}
	// --flush may come after --config; only outside service/host, where
	// it could be the value of --output.
	for _, a := range args {
		if a == "--flush" {
			return flushCmd(args, stdout, stderr, o)
		}
	}
	fmt.Fprintf(stderr, "pbxha-notify: unknown command %q (service, host or --flush; see --help)\n", args[0])
	return ExitUsage
}

func flushCmd(args []string, stdout, stderr io.Writer, o opts) int {
	fs := pflag.NewFlagSet("flush", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "cluster config file")
	fs.Bool("flush", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "pbxha-notify --flush: %v\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pbxha-notify --flush: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "pbxha-notify --flush: %v\n", err)
		return ExitUsage
	}
	log := newLogger(cfg.RunDir)
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), o.flushTimeout)
	defer cancel()
	n, err := flushSpool(ctx, cfg)
	left := mail.Pending(cfg.SMTP.SpoolDir)
	log.Logf("flush: sent %d, %d left (%v)", n, left, err)
	fmt.Fprintf(stdout, "sent %d spooled message(s), %d left\n", n, left)
	if err != nil {
		fmt.Fprintf(stderr, "pbxha-notify --flush: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}

func notifyCmd(kind string, args []string, stdout, stderr io.Writer, o opts) int {
	n, cfgPath, err := parse(kind, args)
	if err != nil {
		fmt.Fprintf(stderr, "pbxha-notify %s: %v\n", kind, err)
		return ExitUsage
	}
	n.Time = o.now()
	cfg, err := loadConfig(cfgPath)
	if err == nil {
		err = checkSMTP(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pbxha-notify %s: %v\n", kind, err)
		return ExitUsage
	}
	log := newLogger(cfg.RunDir)
	defer log.Close()
	m := Compose(cfg, n)

	// The spool first, so the recipient reads the mails in the order of
	// the events. Bounded: if it cannot be emptied in time (SMTP down,
	// or a long backlog) the new mail is still tried now and the rest
	// stays for the next run.
	var held string
	if mail.Pending(cfg.SMTP.SpoolDir) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), o.flushTimeout)
		sent, ferr := flushSpool(ctx, cfg)
		cancel()
		left := mail.Pending(cfg.SMTP.SpoolDir)
		log.Logf("spool: sent %d, %d left (%v)", sent, left, ferr)
		if left > 0 {
			held = fmt.Sprintf(" (%d older message(s) still spooled)", left)
		}
	}

	spooled, err := mail.Send(context.Background(), cfg.SMTP, m)
	switch {
	case spooled:
		log.Logf("SPOOLED %s to %s in %s (SMTP: %v)", m.Subject, strings.Join(m.To, ","), cfg.SMTP.SpoolDir, err)
		fmt.Fprintf(stdout, "spooled, nothing lost: %s: SMTP failed (%v); it is sent by the next pbxha-notify or pbxha-notify --flush (spool %s)\n", m.Subject, err, cfg.SMTP.SpoolDir)
		return ExitOK
	case err != nil:
		log.Logf("LOST %s to %s: %v", m.Subject, strings.Join(m.To, ","), err)
		fmt.Fprintf(stderr, "pbxha-notify %s: mail LOST: %v\n", kind, err)
		return ExitFailed
	}
	log.Logf("sent %s to %s%s", m.Subject, strings.Join(m.To, ","), held)
	fmt.Fprintf(stdout, "sent to %s: %s%s\n", strings.Join(m.To, ","), m.Subject, held)
	return ExitOK
}

// parse reads the command line of notifications.conf. Every required
// value must be there and non-empty: Icinga passes an empty macro as an
// empty argument.
func parse(kind string, args []string) (Notification, string, error) {
	n := Notification{Kind: kind}
	fs := pflag.NewFlagSet(kind, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&n.Type, "type", "", "")
	fs.StringVar(&n.Host, "host", "", "")
	if kind == "service" {
		fs.StringVar(&n.Service, "service", "", "")
	}
	fs.StringVar(&n.State, "state", "", "")
	fs.StringVar(&n.Output, "output", "", "")
	fs.StringVar(&n.LongOutput, "long-output", "", "")
	fs.StringVar(&n.Author, "author", "", "")
	fs.StringVar(&n.Comment, "comment", "", "")
	to := fs.String("to", "", "")
	cfgPath := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		return n, "", err
	}
	if fs.NArg() > 0 {
		return n, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	required := []struct{ flag, v string }{{"type", n.Type}, {"host", n.Host}, {"service", n.Service}, {"state", n.State}, {"to", *to}}
	var missing []string
	for _, r := range required {
		if r.flag == "service" && kind != "service" {
			continue
		}
		if strings.TrimSpace(r.v) == "" {
			missing = append(missing, "--"+r.flag)
		}
	}
	if len(missing) > 0 {
		return n, "", fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	for _, a := range strings.Split(*to, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, err := netmail.ParseAddress(a); err != nil {
			return n, "", fmt.Errorf("--to %q is not an email address", a)
		}
		n.To = append(n.To, a)
	}
	if len(n.To) == 0 {
		return n, "", errors.New("--to names no address")
	}
	return n, *cfgPath, nil
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, path != "")
	if err == nil && cfg == nil {
		err = fmt.Errorf("no configuration file %s (--config or $PBXHA_CONFIG name another)", config.DefaultPath)
	}
	return cfg, err
}

// checkSMTP refuses a config that could never send: a mail spooled for it
// would wait forever.
func checkSMTP(cfg *config.Config) error {
	switch {
	case cfg.SMTP.Host == "":
		return fmt.Errorf("%s: smtp.host: missing (the SMTP server pbxha-notify sends through)", cfg.Path())
	case cfg.SMTP.From == "":
		return fmt.Errorf("%s: smtp.from: missing (the sender of the mails)", cfg.Path())
	}
	if _, err := netmail.ParseAddress(cfg.SMTP.From); err != nil {
		return fmt.Errorf("%s: smtp.from: %q is not an email address", cfg.Path(), cfg.SMTP.From)
	}
	return nil
}

// flushSpool sends the spool; mail.Flush takes the spool's lock, so two
// notifications running at once (a host going down notifies for each of
// its services), or one and the event handler, never send the same
// spooled mail twice. Waiting for the lock counts against ctx.
func flushSpool(ctx context.Context, cfg *config.Config) (int, error) {
	return mail.Flush(ctx, cfg.SMTP)
}

// clean makes a value one line for a header: Icinga passes whatever the
// check printed or the host is named.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Compose builds the mail: a subject in Icinga's style and a plain-text
// body.
func Compose(cfg *config.Config, n Notification) mail.Message {
	id := clean(cfg.ClusterID)
	if id == "" {
		id = "pbxha"
	}
	typ, host, svc, state := clean(n.Type), clean(n.Host), clean(n.Service), clean(n.State)
	var what string
	if n.Kind == "host" {
		what = "host " + host
	} else {
		what = svc + " on " + host
	}
	subj := fmt.Sprintf("[%s] %s: %s is %s", id, typ, what, state)

	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s is %s\n\n", typ, what, state)
	row := func(k, v string) { fmt.Fprintf(&b, "%-18s %s\n", k+":", v) }
	row("Notification type", typ)
	row("Host", host)
	if n.Kind != "host" {
		row("Service", svc)
	}
	row("State", state)
	row("Date/Time", n.Time.Format(LongDateTime))
	sender := "this node"
	if s := cfg.Self(); s != nil {
		sender = s.Name
	} else if h, err := os.Hostname(); err == nil {
		sender = h
	}
	row("Cluster", fmt.Sprintf("%s (sent by %s)", id, sender))
	block := func(title, text string) {
		text = strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
		if strings.TrimSpace(text) == "" {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, l := range strings.Split(text, "\n") {
			fmt.Fprintf(&b, "  %s\n", strings.TrimRight(l, "\r"))
		}
	}
	if strings.TrimSpace(n.Output) == "" {
		b.WriteString("\nOutput: (none)\n")
	} else {
		block("Output", n.Output)
	}
	block("Long output", n.LongOutput)
	author := clean(n.Author)
	switch {
	case author != "" && strings.TrimSpace(n.Comment) != "":
		block("Comment by "+author, n.Comment)
	case strings.TrimSpace(n.Comment) != "":
		block("Comment", n.Comment)
	case author != "":
		fmt.Fprintf(&b, "\nAuthor: %s\n", author)
	}
	if l := Link(cfg, n); l != "" {
		fmt.Fprintf(&b, "\n%s\n", l)
	}
	return mail.Message{From: cfg.SMTP.From, To: n.To, Subject: subj, Body: b.String(), Date: n.Time}
}
