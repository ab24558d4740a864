package notify

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
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
