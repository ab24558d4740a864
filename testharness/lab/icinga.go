package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// IcingaBin is the Icinga 2 program.
var IcingaBin = "/usr/sbin/icinga2"

// icingaDirs are an Icinga instance's own folders under the node's root, so
// two instances (one per node) never share state.
func (l *Lab) icingaDirs(node string) map[string]string {
	base := filepath.Join(l.root, node, "icinga2")
	return map[string]string{
		"DataDir":    filepath.Join(base, "data"),
		"LogDir":     filepath.Join(base, "log"),
		"CacheDir":   filepath.Join(base, "cache"),
		"SpoolDir":   filepath.Join(base, "spool"),
		"InitRunDir": filepath.Join(base, "run"),
	}
}

// IcingaDataDir is where node's Icinga keeps its state (icinga2.state).
func (l *Lab) IcingaDataDir(node string) string { return l.icingaDirs(node)["DataDir"] }

// icingaArgs is LAB.md's command line for a config dir holding
// icinga2.conf: root, and every directory the node's own.
func (l *Lab) icingaArgs(node, confDir string, validate bool) ([]string, error) {
	if !isNode(node) {
		return nil, fmt.Errorf("icinga2: %q is not a node", node)
	}
	confDir, err := filepath.Abs(confDir)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(confDir, "icinga2.conf")
	if _, err := os.Stat(conf); err != nil {
		return nil, fmt.Errorf("icinga2: %w", err)
	}
	argv := []string{IcingaBin, "daemon"}
	if validate {
		argv = append(argv, "-C")
	}
	argv = append(argv, "-c", conf, "-DRunAsUser=root", "-DRunAsGroup=root", "-DConfigDir="+confDir)
	for _, k := range []string{"DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir"} {
		d := l.icingaDirs(node)[k]
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		argv = append(argv, "-D"+k+"="+d)
	}
	return argv, nil
}

// CheckIcinga validates a config dir as node's Icinga would load it
// (`icinga2 daemon -C`); the error carries Icinga's output.
func (l *Lab) CheckIcinga(ctx context.Context, node, confDir string) error {
	argv, err := l.icingaArgs(node, confDir, true)
	if err != nil {
		return err
	}
	out, err := l.Command(ctx, node, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("icinga2 daemon -C on %s: %w:\n%s", node, err, tailString(string(out), 3000))
	}
	return nil
}

// StartIcinga starts Icinga 2 inside node's namespace with confDir (it
// holds icinga2.conf) and the node's own state, log and run dirs, with env
// added to its environment (e.g. PBXHA_CONFIG=...). It returns once the
// config is loaded and the daemon has written its pid file. Stop it with
// StopIcinga; Reset and Down stop it too.
func (l *Lab) StartIcinga(ctx context.Context, node, confDir string, env ...string) error {
	if err := l.StopIcinga(ctx, node); err != nil {
		return err
	}
	if err := l.CheckIcinga(ctx, node, confDir); err != nil {
		return err
	}
	argv, err := l.icingaArgs(node, confDir, false)
	if err != nil {
		return err
	}
	run := l.icingaDirs(node)["InitRunDir"]
	_ = os.Remove(filepath.Join(run, "icinga2.pid"))
	logf := l.logFile(node, SvcIcinga)
	d, err := spawn(node, argv, env, l.HostDir(node), logf, l.pidFile(node, SvcIcinga))
	if err != nil {
		return err
	}
	err = WaitFor(ctx, "icinga2 on "+node+" to start", func() error {
		select {
		case <-d.exited:
			return fmt.Errorf("icinga2 exited; log %s:\n%s", logf, logTail(logf))
		default:
		}
		if _, err := os.Stat(filepath.Join(run, "icinga2.pid")); err != nil {
			return fmt.Errorf("no pid file yet")
		}
		return nil
	})
	if err != nil {
		_ = stopPid(context.WithoutCancel(ctx), l.pidFile(node, SvcIcinga), syscall.SIGKILL, 0)
		return err
	}
	return nil
}

// StopIcinga stops node's Icinga (SIGTERM, SIGKILL after 10 s); not
// running is not an error.
func (l *Lab) StopIcinga(ctx context.Context, node string) error {
	return stopPid(ctx, l.pidFile(node, SvcIcinga), syscall.SIGTERM, 10*time.Second)
}

func (l *Lab) killIcinga(ctx context.Context, node string) error {
	return stopPid(ctx, l.pidFile(node, SvcIcinga), syscall.SIGKILL, 0)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
