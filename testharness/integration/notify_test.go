package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/mail"
	"pbxha/testharness/lab"
)

// notifyArgs is pbxha-notify as notifications.conf runs it on node1.
func notifyArgs(l *lab.Lab, typ, state string) []string {
	return []string{"pbxha-notify", "service", "--type", typ, "--host", lab.Node1, "--service", "pbx_disk",
		"--state", state, "--output", "PBX_DISK " + state + " - /var 96% used", "--author", "icingaadmin",
		"--comment", "lab test", "--to", "pbx-admin@example.net", "--config", l.ConfigPath(lab.Node1)}
}

// notifyMail waits for the sink's message with exactly this subject and
// returns it; it fails unless exactly one is there.
func notifyMail(t *testing.T, maildir, subject string) string {
	t.Helper()
	var found []string
	lab.WaitFor(context.Background(), "the mail "+subject, func() error {
		found = nil
		files, _ := filepath.Glob(filepath.Join(maildir, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), "\r\nSubject: "+subject+"\r\n") {
				found = append(found, string(b))
			}
		}
		if len(found) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("%d messages with the subject %q in %s, want 1", len(found), subject, maildir)
	}
	return found[0]
}

func notifyCount(t *testing.T, maildir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(maildir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// pbxha-notify against the lab's SMTP sink on infra: delivered with the
// exact subject; with the sink stopped, spooled (exit 0, nothing lost);
// with the sink back, --flush delivers it and empties the spool.
func TestNotifyMailAndSpool(t *testing.T) {
	l := useLab(t)
	ctx := context.Background()
	maildir := l.Env()["PBXLAB_MAILDIR"]
	if maildir == "" {
		t.Fatal("the lab names no PBXLAB_MAILDIR")
	}
	cfg, err := l.NodeConfig(lab.Node1)
	if err != nil {
		t.Fatal(err)
	}
	spool := cfg.SMTP.SpoolDir
	before := notifyCount(t, maildir)

	r := runIn(t, l, lab.Node1, notifyArgs(l, "PROBLEM", "CRITICAL")...)
	const problem = "[pbxlab] PROBLEM: pbx_disk on node1 is CRITICAL"
	if r.Code != 0 || r.Out != "sent to pbx-admin@example.net: "+problem+"\n" || r.Stderr != "" {
		t.Fatalf("sink up: exit %d, stdout %q, stderr %q", r.Code, r.Out, r.Stderr)
	}
	m := notifyMail(t, maildir, problem)
	t.Logf("the mail:\n%s", m)
	for _, want := range []string{"Delivered-To: pbx-admin@example.net", "From: <pbxha@node1.example.net>",
		"Notification type: PROBLEM", "Output:\r\n  PBX_DISK CRITICAL - /var 96% used", "Comment by icingaadmin:\r\n  lab test",
		"Cluster:           pbxlab (sent by node1)"} {
		if !strings.Contains(m, want) {
			t.Errorf("the mail lacks %q:\n%s", want, m)
		}
	}
	if n := mail.Pending(spool); n != 0 {
		t.Fatalf("%d spooled with the sink up", n)
	}

	// The sink stopped: spooled, exit 0, said on stdout.
	if err := l.Fault(ctx, "kill", lab.Infra, "smtp"); err != nil {
		t.Fatal(err)
	}
	const recovery = "[pbxlab] RECOVERY: pbx_disk on node1 is OK"
	t0 := time.Now()
	r = runIn(t, l, lab.Node1, notifyArgs(l, "RECOVERY", "OK")...)
	t.Logf("with the sink down after %s: %s", time.Since(t0).Round(time.Millisecond), r.Out)
	if r.Code != 0 || !strings.HasPrefix(r.Out, "spooled, nothing lost: "+recovery+": SMTP failed (") || r.Stderr != "" {
		t.Fatalf("sink down: exit %d, stdout %q, stderr %q", r.Code, r.Out, r.Stderr)
	}
	if n := mail.Pending(spool); n != 1 {
		t.Fatalf("%d spooled in %s, want 1", n, spool)
	}
	if n := notifyCount(t, maildir); n != before+1 {
		t.Fatalf("%d messages in the sink, want %d (none while it was down)", n, before+1)
	}

	// The sink back: --flush sends it, the spool is empty.
	if err := l.Fault(ctx, "start", lab.Infra, "smtp"); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, l, lab.Node1, "pbxha-notify", "--flush", "--config", l.ConfigPath(lab.Node1))
	if r.Code != 0 || r.Out != "sent 1 spooled message(s), 0 left\n" || r.Stderr != "" {
		t.Fatalf("flush: exit %d, stdout %q, stderr %q", r.Code, r.Out, r.Stderr)
	}
	notifyMail(t, maildir, recovery)
	if n := mail.Pending(spool); n != 0 {
		t.Fatalf("%d still spooled after --flush", n)
	}
	if n := notifyCount(t, maildir); n != before+2 {
		t.Fatalf("%d messages in the sink, want %d", n, before+2)
	}
	log, err := os.ReadFile(filepath.Join(cfg.RunDir, "notify.log"))
	if err != nil || !strings.Contains(string(log), "SPOOLED "+recovery) || !strings.Contains(string(log), "flush: sent 1, 0 left") {
		t.Fatalf("notify.log (%v):\n%s", err, log)
	}
}
