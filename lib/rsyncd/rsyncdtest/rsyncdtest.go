// Package rsyncdtest starts a real rsync daemon on loopback for tests of
// check_pbx_rsync: a temporary folder holds its config, pid, lock and log
// files and one directory per module.
//
// Modules:
//
//	open    writable, no password, listed
//	auth    writable, user User with password Password
//	ro      read-only, same user
//	hidden  no password, not listed ("list = no")
package rsyncdtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The credentials of the auth and ro modules.
const (
	User     = "pbxsync"
	Password = "s3cret-sync"
)

// Daemon is a running rsync daemon.
type Daemon struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // holds rsyncd.conf, rsyncd.log and the module folders
}

// ModuleDir is where a module's files are.
func (d *Daemon) ModuleDir(module string) string { return filepath.Join(d.Dir, module) }

// PasswordFile writes pw to a file (mode 0600) and returns its path.
func (d *Daemon) PasswordFile(t testing.TB, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rsync.pw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Need skips the test when rsync is missing, except under CI=true, where
// that is a failure.
func Need(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and rsync is not installed: %v", err)
		}
		t.Skipf("rsync is not installed: %v", err)
	}
	return p
}

// Start runs a daemon until the test ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	bin := Need(t)
	dir := t.TempDir()
	for _, m := range []string{"open", "auth", "ro", "hidden"} {
		if err := os.MkdirAll(filepath.Join(dir, m), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secrets := filepath.Join(dir, "rsyncd.secrets")
	if err := os.WriteFile(secrets, []byte(User+":"+Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "rsyncd.conf")
	text := fmt.Sprintf(`pid file = %[1]s/rsyncd.pid
lock file = %[1]s/rsyncd.lock
log file = %[1]s/rsyncd.log
use chroot = no
reverse lookup = no
uid = %[2]d
gid = %[3]d
max connections = 20
timeout = 30

[open]
	path = %[1]s/open
	comment = writable, no password
	read only = no
[auth]
	path = %[1]s/auth
	comment = writable, password
	read only = no
	auth users = %[4]s
	secrets file = %[5]s
[ro]
	path = %[1]s/ro
	comment = read-only, password
	read only = yes
	auth users = %[4]s
	secrets file = %[5]s
[hidden]
	path = %[1]s/hidden
	list = no
	read only = no
`, dir, os.Getuid(), os.Getgid(), User, secrets)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--daemon", "--no-detach", "--config="+conf, "--port="+strconv.Itoa(port), "--address=127.0.0.1")
		logf, err := os.Create(filepath.Join(dir, "stderr.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting rsync --daemon: %v", err)
		}
		// exited is closed when the daemon has gone.
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
		d := &Daemon{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir}
		if lastErr = waitListening(d.Addr, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return d
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	log, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
	t.Fatalf("rsync daemon did not start: %v\n%s", lastErr, log)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until the daemon accepts connections or exits.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the daemon exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("nothing listens on " + addr + " after 10s")
}
