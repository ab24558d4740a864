package integration

// Secrets never appear in output, logs or mail: every plugin and the event
// handler run with the lab's secrets (which work) and with wrong ones
// (whose failures are reported), and everything they print or write is
// searched for each secret.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// leakCanary is a wrong secret no message could contain by accident.
const leakCanary = "PBXHA-LEAK-CANARY-quokka-9157"

// labSecrets are the secret values of the lab (and the cluster SSH key's
// body), each with where it came from.
func labSecrets(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := filepath.Join(l.RootDir(), "secrets")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pw") && !strings.HasSuffix(e.Name(), ".secret") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.TrimSpace(string(b)); len(v) >= 8 {
			out[v] = e.Name()
		}
	}
	key, err := os.ReadFile(filepath.Join(l.RootDir(), "ssh", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(key), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out[line] = "the cluster SSH key"
		}
	}
	if len(out) < 6 {
		t.Fatalf("only %d secrets found in %s: the test would prove little", len(out), dir)
	}
	out[leakCanary] = "the wrong secret"
	return out
}

// wrongConfig is node's cluster.toml with every secret file replaced by
// one holding leakCanary, so each login fails and says why.
func wrongConfig(t *testing.T, l *lab.Lab, node string) string {
	t.Helper()
	b, err := os.ReadFile(l.ConfigPath(node))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(l.RootDir(), "leak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	text := string(b)
	secrets := filepath.Join(l.RootDir(), "secrets")
	for _, name := range []string{"mysql.pw", "mysql-repl.pw", "pgsql.pw", "pgsql-repl.pw", "rsync.pw", "ami.secret"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(leakCanary+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, filepath.Join(secrets, name), p)
	}
	if !strings.Contains(text, dir) {
		t.Fatalf("no secret file of %s was replaced", l.ConfigPath(node))
	}
	p := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNoSecretInOutputLogsOrMail(t *testing.T) {
	l := useLab(t)
	secrets := labSecrets(t, l)
	var seen []string // every output, then every file our programs wrote
	record := func(what string, r Run) {
		seen = append(seen, fmt.Sprintf("== %s\n%s\n%s", what, r.Out, r.Stderr))
	}
	plugins, err := filepath.Glob(filepath.Join(bin(t, "pbxha-eventhandler")+"/..", "check_pbx_*"))
	if err != nil || len(plugins) < 13 {
		t.Fatalf("plugins: %v %v", plugins, err)
	}
	failedLogins := 0
	for _, node := range lab.Nodes {
		for _, cfg := range []string{l.ConfigPath(node), wrongConfig(t, l, node)} {
			for _, p := range plugins {
				name := filepath.Base(p)
				variants := [][]string{{}}
				if strings.Contains(name, "_db_") {
					variants = [][]string{{"--driver", "mysql"}, {"--driver", "pgsql"}}
				}
				for _, v := range variants {
					argv := append([]string{name, "--config", cfg, "--role", "any", "-vvv", "-t", "8"}, v...)
					r := runIn(t, l, node, argv...)
					record(strings.Join(argv, " "), r)
					if cfg != l.ConfigPath(node) && r.Code == 2 {
						failedLogins++
					}
				}
			}
		}
	}
	if failedLogins < 6 {
		t.Fatalf("only %d checks failed with the wrong secrets: the wrong-secret half tested little", failedLogins)
	}

	// The event handler: a failover with its mail, status, maintenance,
	// the stale master stepping down, rejoin; and pbxha-notify.
	ctx := context.Background()
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	record("handle", handleOn(t, l, lab.Node2, "pbx_master_alive"))
	if err := l.Fault(ctx, "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	record("handle on node1", handleOn(t, l, lab.Node1, "pbx_cluster"))
	record("rejoin", eh(t, l, lab.Node1, "rejoin"))
	record("status", eh(t, l, lab.Node2, "status", "--json"))
	record("maintenance on", eh(t, l, lab.Node2, "maintenance", "on", "--for", "1m"))
	record("maintenance off", eh(t, l, lab.Node2, "maintenance", "off"))
	record("notify", runIn(t, l, lab.Node1, "pbxha-notify", "service", "--config", l.ConfigPath(lab.Node1), "--type", "PROBLEM",
		"--host", "node1", "--service", "pbx_db_query", "--state", "CRITICAL", "--output", "test", "--to", "pbx-admin@example.net"))
	time.Sleep(500 * time.Millisecond) // the sink writes the last mails

	// What they wrote: logs, spools, state, and the mail that arrived.
	var files int
	for _, dir := range []string{filepath.Join(l.RootDir(), lab.Node1), filepath.Join(l.RootDir(), lab.Node2), l.Maildir()} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(l.RootDir(), p)
			// Ours only: the run dir (logs), spool, state; and the mail.
			if !strings.Contains(rel, "/run/pbxha/") && !strings.Contains(rel, "/spool/") && !strings.Contains(rel, "/state/") && !strings.HasPrefix(p, l.Maildir()) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil {
				files++
				seen = append(seen, "== file "+rel+"\n"+string(b))
			}
			return nil
		})
	}
	if files < 5 {
		t.Fatalf("only %d files written by pbxha found: the search proves little", files)
	}
	for _, s := range seen {
		for secret, from := range secrets {
			if strings.Contains(s, secret) {
				head, _, _ := strings.Cut(s, "\n")
				t.Errorf("%s appears in %s", from, head)
			}
		}
	}
	t.Logf("searched %d outputs and files for %d secrets; %d checks failed with the wrong secrets", len(seen), len(secrets), failedLogins)
}
