package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError says why the peer's host key was not accepted. pbxha never
// learns a host key on first use: the admin puts it in known_hosts.
type HostKeyError struct {
	Host    string // as known_hosts names it: 198.51.100.2, [127.0.0.1]:2222
	File    string
	Offered ssh.PublicKey
	Known   []knownhosts.KnownKey // for a mismatch: what the file has
	Revoked bool
}

func (e *HostKeyError) Error() string {
	offered := e.Offered.Type() + " " + ssh.FingerprintSHA256(e.Offered)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s is revoked in %s (the peer offered %s)", e.Host, e.File, offered)
	case len(e.Known) == 0:
		return fmt.Sprintf("unknown host key for %s: no entry in %s (the peer offered %s; check it on the peer, then add it)", e.Host, e.File, offered)
	}
	return fmt.Sprintf("host key mismatch for %s in %s: the peer offered %s, the file has another at line %d (a reinstalled peer, or someone in between)",
		e.Host, e.File, offered, e.Known[0].Line)
}

// hostKeyCheck reads known_hosts once and returns the strict callback and
// the host key algorithms to ask the peer for. Without the latter a peer
// holding several host keys may offer one of a type the file does not
// list, which would read as a mismatch.
func hostKeyCheck(file, hostport string) (ssh.HostKeyCallback, []string, error) {
	if file == "" {
		return nil, nil, errors.New("ssh.known_hosts is not set in cluster.toml: the peer's host key is always verified")
	}
	if _, err := os.Stat(file); err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	db, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("reading known_hosts %s: %w", file, err)
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := db(hostname, remote, key)
		if err == nil {
			return nil
		}
		var (
			ke *knownhosts.KeyError
			re *knownhosts.RevokedError
		)
		host := knownhosts.Normalize(hostname)
		switch {
		case errors.As(err, &re):
			return &HostKeyError{Host: host, File: file, Offered: key, Revoked: true}
		case errors.As(err, &ke):
			return &HostKeyError{Host: host, File: file, Offered: key, Known: ke.Want}
		}
		return fmt.Errorf("checking the host key against %s: %w", file, err)
	}
	return cb, knownAlgorithms(db, hostport), nil
}

// knownAlgorithms lists the host key algorithms of the keys known_hosts
// holds for hostport (nil when it holds none: the check then fails with
// "unknown host key" whatever the peer offers). Asking about a key no file
// can hold returns them all in the KeyError.
func knownAlgorithms(db ssh.HostKeyCallback, hostport string) []string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probeKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	remote, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(db(hostport, remote, probeKey), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		if t := k.Key.Type(); t == ssh.KeyAlgoRSA {
			// An RSA key signs with SHA-2 today; ssh-rsa (SHA-1) last.
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos
}
