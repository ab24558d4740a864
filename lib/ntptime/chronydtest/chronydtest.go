package chronydtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"github.com/facebook/time/ntp/chrony"
)

// Options says what the daemon does.
type Options struct {
	// Serve makes it an NTP server on 127.0.0.1 with "local stratum 8".
	Serve bool
	// Offset runs it under libfaketime with this FAKETIME ("+300s").
	Offset string
	// Upstream makes it a client of this host:port; Start then waits until
	// it has synchronised.
	Upstream string
}

// Daemon is a running chronyd.
type Daemon struct {
	NTPAddr string // 127.0.0.1:port when Serve
	CmdAddr string // 127.0.0.1:port of the command port (UDP)
	Socket  string // its command socket
	Dir     string
	cmd     *exec.Cmd
}

// Need fails or skips the test when chronyd cannot run here: skip on a
// developer's machine, fail under CI=true, where the test must not pass by
// not running.
func Need(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", what)
	}
	t.Skipf("%s", what)
}

// Path finds chronyd.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("chronyd")
	if err != nil {
		for _, c := range []string{"/usr/sbin/chronyd", "/sbin/chronyd"} {
			if _, e := os.Stat(c); e == nil {
				p, err = c, nil
				break
			}
		}
	}
	Need(t, "chronyd is not installed (Debian package chrony)", err == nil)
	Need(t, "chronyd refuses to run without root", os.Geteuid() == 0)
	return p
}

// libfaketime is what `faketime -f` preloads. The faketime wrapper forks
// and does not pass signals on, so killing it would leave chronyd running;
// preloading the library ourselves keeps chronyd our direct child.
func libfaketime(t testing.TB) string {
	t.Helper()
	for _, pat := range []string{
		"/usr/lib/*/faketime/libfaketime.so.1",
		"/usr/lib/faketime/libfaketime.so.1",
		"/usr/local/lib/faketime/libfaketime.so.1",
	} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0]
		}
	}
	Need(t, "libfaketime is not installed (Debian packages faketime, libfaketime)", false)
	return ""
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that nothing used a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Start runs chronyd in the foreground and waits until it answers (and, with
// Upstream, until it has synchronised). The test's cleanup stops it.
func Start(t testing.TB, o Options) *Daemon {
	t.Helper()
	bin := Path(t)
	var preload string
	if o.Offset != "" {
		preload = libfaketime(t)
	}
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil { // chronyd refuses a socket directory others can enter
		t.Fatal(err)
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(run, "chronyd.sock")}
	cmdPort := FreeUDPPort(t)
	d.CmdAddr = "127.0.0.1:" + strconv.Itoa(cmdPort)
	conf := []string{
		"cmdport " + strconv.Itoa(cmdPort),
		"bindcmdaddress 127.0.0.1",
		"bindcmdaddress " + d.Socket,
		"pidfile " + filepath.Join(dir, "chronyd.pid"),
	}
	if o.Serve {
		port := FreeUDPPort(t)
		d.NTPAddr = "127.0.0.1:" + strconv.Itoa(port)
		conf = append(conf, "port "+strconv.Itoa(port), "bindaddress 127.0.0.1", "allow 127.0.0.1", "local stratum 8")
	} else {
		conf = append(conf, "port 0")
	}
	if o.Upstream != "" {
		host, port, _ := net.SplitHostPort(o.Upstream)
		// minpoll -6: a sample every 1/64 s, so it selects the source in
		// about a second instead of a minute.
		conf = append(conf, fmt.Sprintf("server %s port %s iburst minpoll -6 maxpoll -6", host, port))
	}
	cf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(cf, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "chronyd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "-d", "-x", "-u", "root", "-f", cf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = os.Environ()
	if preload != "" {
		d.cmd.Env = append(d.cmd.Env, "LD_PRELOAD="+preload, "FAKETIME="+o.Offset)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting chronyd: %v", err)
	}
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		err := d.ready(o)
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("chronyd exited: %s", d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chronyd not ready after 20s: %v\n%s", err, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The pid file proves the daemon that answered is this one and not
	// another that held the port first.
	b, err := os.ReadFile(filepath.Join(dir, "chronyd.pid"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.cmd.Process.Pid) {
		t.Fatalf("chronyd pid file %q (err %v), want pid %d\n%s", b, err, d.cmd.Process.Pid, d.Log())
	}
	return d
}

func (d *Daemon) ready(o Options) error {
	if o.Serve {
		if _, err := ntp.QueryWithOptions(d.NTPAddr, ntp.QueryOptions{Timeout: 300 * time.Millisecond}); err != nil {
			return err
		}
	}
	leap, err := d.Leap()
	if err != nil {
		return err
	}
	if o.Upstream != "" && leap == 3 {
		return fmt.Errorf("not synchronised to %s yet", o.Upstream)
	}
	return nil
}

// Leap asks the daemon's command port for its tracking leap status
// (3: not synchronised).
func (d *Daemon) Leap() (uint16, error) {
	c, err := net.Dial("udp", d.CmdAddr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	p, err := (&chrony.Client{Connection: c}).Communicate(chrony.NewTrackingPacket())
	if err != nil {
		return 0, err
	}
	tr, ok := p.(*chrony.ReplyTracking)
	if !ok {
		return 0, fmt.Errorf("reply %T to tracking", p)
	}
	return tr.LeapStatus, nil
}

// Log is what chronyd printed so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "chronyd.log"))
	return string(b)
}
