package ntptime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/facebook/time/ntp/chrony"

	"pbxha/lib/plugin"
)

// Where the local daemons are looked for by default.
const (
	// DefaultChronySocket is chronyd's command socket on Debian (root and
	// group _chrony only); chrony.ChronySocketPath says /var/run, which is
	// the same directory through a symlink.
	DefaultChronySocket = "/run/chrony/chronyd.sock"
	// DefaultChronyUDP is chronyd's command port; it answers monitoring
	// requests such as tracking from localhost to anyone.
	DefaultChronyUDP = "127.0.0.1:323"
	// DefaultTimesyncDir is systemd-timesyncd's runtime directory. It
	// creates the file "synchronized" there once the kernel clock is
	// synchronised (systemd 246 and later).
	DefaultTimesyncDir = "/run/systemd/timesync"
)

// defaultChrony is where chronyd is looked for, in order; tests point it at
// their own daemons.
var defaultChrony = []string{DefaultChronySocket, DefaultChronyUDP}

// chronyd's reference ID while it serves its own clock ("local stratum N"):
// 127.127.1.1, as in ntpd's LOCAL driver.
const chronyLocalRefID = 0x7F7F0101

// chronyd's leap status 3: not synchronised (candm.h LEAP_Unsynchronised).
const chronyLeapUnsync = 3

// LocalStatus is what the node's own time daemon says.
type LocalStatus struct {
	Daemon string // "chronyd", "systemd-timesyncd", "" when none was found
	Where  string // the socket, address or directory asked
	// Err: the daemon is there but could not be asked (or, with an
	// explicit address, did not answer there).
	Err error

	Synced bool
	// FreeRunning: chronyd serves its own clock ("local stratum"), with no
	// real time source behind it.
	FreeRunning bool
	// HasTracking: Offset, Stratum, Reference and Leap are known (chronyd).
	HasTracking bool
	// Offset is chronyd's "System time" correction in seconds: positive
	// when the system clock is behind NTP time, the sign SNTP offsets have.
	Offset    float64
	Stratum   int
	Reference string
	Leap      uint16
}

// LocalOptions says where to look. An empty Chrony tries the socket, then
// UDP, then systemd-timesyncd; a given one asks only that chronyd.
type LocalOptions struct {
	Chrony      string // a socket path (starting with /) or host[:port] for UDP
	TimesyncDir string
}

// ReadLocal asks the node's time daemon under ctx.
func ReadLocal(ctx context.Context, o LocalOptions) LocalStatus {
	if o.Chrony != "" {
		st, err := askChrony(ctx, o.Chrony)
		if err != nil {
			return LocalStatus{Daemon: "chronyd", Where: o.Chrony, Err: err}
		}
		return st
	}
	// chronyd is absent when its socket is missing or nobody listens on
	// either path; any other failure (permission, timeout, a refusal) means
	// it runs but could not be asked, and is reported, not guessed around.
	var errs []string
	for _, addr := range defaultChrony {
		st, err := askChrony(ctx, addr)
		if err == nil {
			return st
		}
		if !absent(err) {
			errs = append(errs, addr+": "+describeErr(err))
		}
	}
	if len(errs) > 0 {
		return LocalStatus{Daemon: "chronyd", Err: errors.New(strings.Join(errs, "; "))}
	}
	dir := o.TimesyncDir
	if dir == "" {
		dir = DefaultTimesyncDir
	}
	if st, ok := readTimesyncd(dir); ok {
		return st
	}
	return LocalStatus{}
}

func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}

// askChrony sends chronyd a tracking request, the one behind `chronyc
// tracking`.
func askChrony(ctx context.Context, addr string) (LocalStatus, error) {
	conn, cleanup, err := dialChrony(ctx, addr)
	if err != nil {
		return LocalStatus{}, err
	}
	defer cleanup()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	t, err := readTracking(conn)
	if err != nil {
		return LocalStatus{}, err
	}
	st := trackingStatus(t)
	st.Where = addr
	return st, nil
}

func dialChrony(ctx context.Context, addr string) (net.Conn, func(), error) {
	if strings.HasPrefix(addr, "/") {
		return dialChronyUnix(addr)
	}
	hp, err := hostPort(addr, 323)
	if err != nil {
		return nil, nil, err
	}
	hp, err = resolve(ctx, hp)
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", hp)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

// dialChronyUnix binds a client socket next to chronyd's, as chronyc does:
// chronyd answers a datagram to its sender's path, and under systemd it runs
// with a private /tmp where a socket of ours would not exist for it. The
// socket is made writable for chronyd, which runs as _chrony.
func dialChronyUnix(path string) (net.Conn, func(), error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, err
	}
	local := filepath.Join(filepath.Dir(path), fmt.Sprintf("pbxha-time.%d.sock", os.Getpid()))
	os.Remove(local) // a leftover of a killed run with our pid
	c, err := net.DialUnix("unixgram",
		&net.UnixAddr{Name: local, Net: "unixgram"},
		&net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { c.Close(); os.Remove(local) }
	if err := os.Chmod(local, 0o666); err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, cleanup, nil
}

// readTracking does one tracking exchange over rw.
func readTracking(rw io.ReadWriter) (chrony.Tracking, error) {
	c := &chrony.Client{Connection: rw}
	p, err := c.Communicate(chrony.NewTrackingPacket())
	if err != nil {
		return chrony.Tracking{}, err
	}
	t, ok := p.(*chrony.ReplyTracking)
	if !ok {
		return chrony.Tracking{}, fmt.Errorf("chronyd answered a tracking request with reply type %d", p.GetType())
	}
	return t.Tracking, nil
}

// trackingStatus reads chronyd's tracking report.
func trackingStatus(t chrony.Tracking) LocalStatus {
	st := LocalStatus{
		Daemon:      "chronyd",
		HasTracking: true,
		Synced:      t.LeapStatus != chronyLeapUnsync,
		FreeRunning: t.RefID == chronyLocalRefID,
		Offset:      t.CurrentCorrection,
		Stratum:     int(t.Stratum),
		Leap:        t.LeapStatus,
	}
	switch {
	case st.FreeRunning:
		st.Reference = "its local clock"
	case t.IPAddr != nil && !t.IPAddr.IsUnspecified():
		st.Reference = t.IPAddr.String()
	default: // a reference clock: its refid is a name such as GPS or PPS
		st.Reference = plugin.Clean(chrony.RefidToString(t.RefID), 16)
	}
	return st
}

// readTimesyncd reports whether systemd-timesyncd is there (its runtime
// directory exists) and whether it has synchronised the clock.
func readTimesyncd(dir string) (LocalStatus, bool) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return LocalStatus{}, false
	}
	_, err = os.Stat(filepath.Join(dir, "synchronized"))
	return LocalStatus{Daemon: "systemd-timesyncd", Where: dir, Synced: err == nil}, true
}
