package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"pbxha/testharness/labdb"
)

// generateCreds makes fresh credentials; the database ones come from labdb
// so they satisfy its character rules.
func (l *Lab) generateCreds() Creds {
	db := labdb.GenerateCreds()
	return Creds{
		MySQLUser: db.AppUser, MySQLPassword: db.AppPassword,
		MySQLReplUser: db.ReplUser, MySQLReplPassword: db.ReplPassword,
		PGUser: db.AppUser, PGPassword: db.AppPassword,
		PGReplUser: db.ReplUser, PGReplPassword: db.ReplPassword,
		AMIUser: "pbxha", AMISecret: rand.Text(),
		RsyncUser: "pbxsync", RsyncPassword: rand.Text(),
		SSHKey: filepath.Join(l.root, "ssh", "id_ed25519"),
	}
}

func (c Creds) labdb() labdb.Creds {
	return labdb.Creds{AppUser: c.MySQLUser, AppPassword: c.MySQLPassword, ReplUser: c.MySQLReplUser, ReplPassword: c.MySQLReplPassword}
}

// writeSecrets writes one file per secret (mode 0600; shareWithNagios then
// gives cluster.toml's to group nagios), as cluster.toml's
// `{ file = ... }` secrets and the daemons read them.
func (l *Lab) writeSecrets() error {
	c := l.st.Creds
	if err := os.MkdirAll(l.secretsDir(), 0o700); err != nil {
		return err
	}
	files := map[string]string{
		"mysql.pw":       c.MySQLPassword,
		"mysql-repl.pw":  c.MySQLReplPassword,
		"pgsql.pw":       c.PGPassword,
		"pgsql-repl.pw":  c.PGReplPassword,
		"ami.secret":     c.AMISecret,
		"rsync.pw":       c.RsyncPassword,
		"ami-users":      c.AMIUser + " " + c.AMISecret,
		"rsyncd.secrets": c.RsyncUser + ":" + c.RsyncPassword,
	}
	for name, v := range files {
		if err := writeFile0600(l.secretFile(name), v+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func writeFile0600(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // WriteFile keeps an existing file's mode
}

// PeerCommand is the path of pbxha-peer that each node's authorized_keys
// pins the cluster key to (and cluster.toml's ssh.command names).
func (l *Lab) PeerCommand() string { return filepath.Join(l.st.Bin, "pbxha-peer") }

// CheckKey is the checks' key (ssh.check_key_file): authorized_keys pins
// it to `pbxha-peer --read-only`; group nagios reads it, not the cluster
// key.
func (l *Lab) CheckKey() string { return filepath.Join(l.root, "ssh", "id_ed25519_check") }

// authorizedKey is node's authorized_keys line: the cluster key may run
// pbxha-peer with this node's config and nothing else (lib/peer's security
// boundary, as in production); with readOnly, pbxha-peer --read-only.
func (l *Lab) authorizedKey(node string, key ssh.PublicKey, readOnly bool) (string, error) {
	// sshd hands the forced command to the user's shell: keep it to plain
	// paths rather than quote for two languages at once.
	for _, p := range []string{l.PeerCommand(), l.ConfigPath(node)} {
		if strings.ContainsAny(p, " \t\n\"'$`\\;&|<>(){}*?[]~!#") {
			return "", fmt.Errorf("authorized_keys: %q holds a character a forced command cannot carry (choose another lab root or bin dir)", p)
		}
	}
	forced := l.PeerCommand() + " --config " + l.ConfigPath(node)
	if readOnly {
		forced = l.PeerCommand() + " --read-only --config " + l.ConfigPath(node)
	}
	return fmt.Sprintf("command=\"%s\",restrict %s", forced, ssh.MarshalAuthorizedKey(key)), nil
}

// writeSSHKeys makes each node's host key, the cluster key both nodes
// accept (pinned to pbxha-peer), the checks' key (pinned to pbxha-peer
// --read-only), and a known_hosts naming both nodes by cluster IP.
func (l *Lab) writeSSHKeys() error {
	pub, err := newKey(l.st.Creds.SSHKey, "pbxlab-cluster")
	if err != nil {
		return err
	}
	checkPub, err := newKey(l.CheckKey(), "pbxlab-checks")
	if err != nil {
		return err
	}
	var known strings.Builder
	for _, n := range Nodes {
		h, _ := Host(n)
		dir := filepath.Join(l.root, n, "ssh")
		hostPub, err := newKey(filepath.Join(dir, "ssh_host_ed25519_key"), "pbxlab-"+n)
		if err != nil {
			return err
		}
		fmt.Fprintf(&known, "%s %s", h.ClusterIP, ssh.MarshalAuthorizedKey(hostPub))
		line, err := l.authorizedKey(n, pub, false)
		if err != nil {
			return err
		}
		checkLine, err := l.authorizedKey(n, checkPub, true)
		if err != nil {
			return err
		}
		if err := writeFile0600(filepath.Join(dir, "authorized_keys"), line+checkLine); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(l.root, "ssh", "known_hosts"), []byte(known.String()), 0o644)
}

// newKey writes an ed25519 key pair in OpenSSH format (path, path.pub).
func newKey(path, comment string) (ssh.PublicKey, error) {
	pubRaw, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	if err := writeFile0600(path, string(pem.EncodeToMemory(block))); err != nil {
		return nil, err
	}
	pub, err := ssh.NewPublicKey(pubRaw)
	if err != nil {
		return nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(line), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

// KnownHosts is the known_hosts file naming both nodes' host keys.
func (l *Lab) KnownHosts() string { return filepath.Join(l.root, "ssh", "known_hosts") }
