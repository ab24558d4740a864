package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// logger appends one timestamped line per event to <run_dir>/notify.log,
// beside the event handler's log: Icinga keeps a notification command's
// output only when it fails. Subjects, addresses and SMTP errors go there;
// the SMTP password never does (lib/mail never puts it in an error).
type logger struct{ file *os.File }

func newLogger(runDir string) *logger {
	l := &logger{}
	if runDir != "" {
		if err := os.MkdirAll(runDir, 0o755); err == nil {
			l.file, _ = os.OpenFile(filepath.Join(runDir, "notify.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		}
	}
	return l
}

func (l *logger) Logf(format string, args ...any) {
	if l.file == nil {
		return
	}
	// One write per line: O_APPEND keeps concurrent runs' lines whole.
	line := fmt.Sprintf("%s [%d] %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), os.Getpid(), fmt.Sprintf(format, args...))
	l.file.WriteString(line)
}

func (l *logger) Close() {
	if l.file != nil {
		l.file.Close()
	}
}

// lockName is the flock beside the spooled mails; mail.Flush and
// mail.Pending skip dot files.
const lockName = ".flush.lock"

// lockSpool takes an exclusive flock on the spool, waiting until ctx ends.
// The kernel drops it when the process dies.
func lockSpool(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the spool %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the spool lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another pbxha-notify is sending the spool (%s): %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
