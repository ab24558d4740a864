package eventhandler

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// logger writes every line with a timestamp to <run_dir>/eventhandler.log
// (Icinga shows an event handler's output nowhere) and a syslog-style copy
// to stderr.
type logger struct {
	mu     sync.Mutex
	file   *os.File
	stderr io.Writer
}

func newLogger(runDir string, stderr io.Writer) *logger {
	l := &logger{stderr: stderr}
	if runDir != "" {
		if err := os.MkdirAll(runDir, 0o755); err == nil {
			l.file, _ = os.OpenFile(filepath.Join(runDir, "eventhandler.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		}
	}
	return l
}

func (l *logger) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		fmt.Fprintf(l.file, "%s [%d] %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), os.Getpid(), msg)
	}
	if l.stderr != nil {
		fmt.Fprintf(l.stderr, "pbxha-eventhandler[%d]: %s\n", os.Getpid(), msg)
	}
}

func (l *logger) Close() {
	if l.file != nil {
		l.file.Close()
	}
}
