// Command pbxlab builds and drives the lab: a two-node PBX cluster in
// network namespaces (see LAB.md). The Makefile's lab-up and lab-down call
// it; the logic is in package testharness/lab.
package main

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"pbxha/testharness/lab"
)

const usage = `usage: pbxlab [--root DIR] COMMAND [ARGS]

commands:
  up                      build the lab and start every service (idempotent)
  down                    stop everything and remove the lab; leaves nothing
  status                  hosts, links, services, pids; exit 1 when unhealthy
  exec HOST -- CMD...     run CMD inside HOST's namespace (exit code passed on)
  fault FAULT ARGS...     inject or undo a fault (pbxlab fault help)
  reset                   back to the initial healthy state, without rebuilding
  icinga start NODE [CONFDIR] [--env K=V]... run Icinga 2 in NODE's namespace (no
                                             CONFDIR: the shipped icinga-conf, this node's Host)
  icinga stop NODE | icinga check NODE CONFDIR
  switch-port HOST enable|disable
                          put HOST's telephony port into the switch or take it
                          out (a switch-port fence; link-down/up leave it alone)

The lab root is $PBXLAB_ROOT (default /tmp/pbxlab); --root overrides it.
`

func main() {
	// A caller holding the lab lock (`flock /tmp/pbxlab.lock pbxlab ...`)
	// passes its descriptor down; without close-on-exec every daemon we
	// start would inherit it and hold the lock long after the caller exits.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := pflag.NewFlagSet("pbxlab", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	root := fs.String("root", "", "lab root (default $PBXLAB_ROOT or /tmp/pbxlab)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *root != "" {
		os.Setenv("PBXLAB_ROOT", *root)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stderr, "pbxlab: ", log.Ltime|log.Lmicroseconds)
	cmd, rest := rest[0], rest[1:]
	var err error
	switch cmd {
	case "up":
		err = up(ctx, logger.Printf)
	case "down":
		err = down(ctx, logger.Printf)
	case "status":
		return status(ctx)
	case "exec":
		return execIn(ctx, rest)
	case "fault":
		err = fault(ctx, rest, logger.Printf)
	case "reset":
		err = withLab(func(l *lab.Lab) error {
			l.SetLogf(logger.Printf)
			rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			return l.Reset(rctx)
		})
	case "icinga":
		err = icinga(ctx, rest)
	case "switch-port":
		if len(rest) != 2 || (rest[1] != "enable" && rest[1] != "disable") {
			fmt.Fprint(os.Stderr, "usage: pbxlab switch-port HOST enable|disable\n")
			return 2
		}
		err = lab.SetSwitchPort(ctx, rest[0], rest[1] == "enable")
		if err == nil {
			logger.Printf("switch port %s %sd", rest[0], rest[1])
		}
	case "service":
		err = service(ctx, rest, logger.Printf)
	case "serve-ami":
		err = serveAMI(ctx, rest, logger.Printf)
	case "serve-smtp":
		err = serveSMTP(ctx, rest, logger.Printf)
	case "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "pbxlab: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pbxlab %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func up(ctx context.Context, logf func(string, ...any)) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	unlock, err := lab.Lock(lctx)
	if err != nil {
		return err
	}
	defer unlock()
	uctx, cancel2 := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel2()
	l, err := lab.UpWith(uctx, lab.Options{Logf: logf})
	if err != nil {
		return err
	}
	l.PrintStatus(ctx)
	return nil
}

func down(ctx context.Context, logf func(string, ...any)) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	unlock, err := lab.Lock(lctx)
	if err != nil {
		return err
	}
	defer unlock()
	dctx, cancel2 := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel2()
	if err := lab.DownWith(dctx, lab.Options{Logf: logf}); err != nil {
		return err
	}
	lab.RemoveLockFile()
	return nil
}

func withLab(fn func(*lab.Lab) error) error {
	l, err := lab.Attach()
	if err != nil {
		return err
	}
	return fn(l)
}

func status(ctx context.Context) int {
	l, err := lab.Attach()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pbxlab status: %v\n", err)
		return 1
	}
	st := l.Status(ctx)
	st.Print(os.Stdout)
	if err := l.Healthy(ctx); err != nil {
		fmt.Printf("\nunhealthy:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
	fmt.Println("\nhealthy")
	return 0
}

// execIn runs a command in a host's namespace with this process's stdio and
// environment, and returns its exit code (128+N for a signal, as a shell).
func execIn(ctx context.Context, args []string) int {
	if len(args) >= 1 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pbxlab exec HOST -- CMD [ARGS...]")
		return 2
	}
	host := args[0]
	argv := args[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "usage: pbxlab exec HOST -- CMD [ARGS...]")
		return 2
	}
	if _, err := lab.Host(host); err != nil {
		fmt.Fprintf(os.Stderr, "pbxlab exec: %v\n", err)
		return 2
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", lab.Netns(host)}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The child shares the terminal: let it have the interrupt.
	signal.Ignore(os.Interrupt)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "pbxlab exec: %v\n", err)
		return 127
	}
}

func fault(ctx context.Context, args []string, logf func(string, ...any)) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Println(lab.FaultUsage)
		return nil
	}
	return withLab(func(l *lab.Lab) error {
		l.SetLogf(logf)
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return l.Fault(fctx, args...)
	})
}

// service is what each node's cluster.toml names as a PBX service's start
// and stop command: `pbxlab service --root R start|stop NODE NAME`. It
// takes no lock: the failover runs it while a test holds the lab lock.
func service(ctx context.Context, args []string, logf func(string, ...any)) error {
	fs := pflag.NewFlagSet("service", pflag.ContinueOnError)
	root := fs.String("root", "", "lab root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root != "" {
		os.Setenv("PBXLAB_ROOT", *root)
	}
	a := fs.Args()
	if len(a) != 3 || (a[0] != "start" && a[0] != "stop") {
		return errors.New("usage: pbxlab service [--root DIR] start|stop NODE SERVICE")
	}
	return withLab(func(l *lab.Lab) error {
		l.SetLogf(logf)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if a[0] == "start" {
			return l.StartService(sctx, a[1], a[2])
		}
		return l.StopService(sctx, a[1], a[2])
	})
}

func icinga(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("icinga", pflag.ContinueOnError)
	env := fs.StringArray("env", nil, "K=V added to Icinga's environment (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	bad := errors.New("usage: pbxlab icinga start NODE [CONFDIR] [--env K=V]... | stop NODE | check NODE CONFDIR")
	if len(a) < 2 {
		return bad
	}
	return withLab(func(l *lab.Lab) error {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		switch {
		case a[0] == "start" && len(a) == 2:
			// The shipped icinga-conf with this node's Host, the
			// programs beside this pbxlab, RAID answers that are OK.
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			bin := filepath.Dir(exe)
			repo := filepath.Dir(bin)
			conf, err := l.WriteIcingaConf(a[1], repo, bin, filepath.Join(repo, "testharness", "e2e", "testdata", "tw_cli", "ok"))
			if err != nil {
				return err
			}
			return l.StartIcinga(ictx, a[1], conf, *env...)
		case a[0] == "start" && len(a) == 3:
			return l.StartIcinga(ictx, a[1], a[2], *env...)
		case a[0] == "check" && len(a) == 3:
			return l.CheckIcinga(ictx, a[1], a[2])
		case a[0] == "stop" && len(a) == 2:
			return l.StopIcinga(ictx, a[1])
		}
		return bad
	})
}

func serveAMI(ctx context.Context, args []string, logf func(string, ...any)) error {
	fs := pflag.NewFlagSet("serve-ami", pflag.ContinueOnError)
	var o lab.AMIOptions
	fs.StringVar(&o.Node, "node", "", "node name (the events' SystemName)")
	fs.StringVar(&o.Addr, "addr", "0.0.0.0:5038", "listen address")
	fs.StringVar(&o.UsersFile, "users-file", "", "file of \"USER SECRET\" lines")
	fs.StringVar(&o.FaultFile, "fault-file", "", "file naming the fault mode, reread at each connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.UsersFile == "" {
		return errors.New("--users-file is required")
	}
	o.Logf = logf
	return lab.ServeAMI(ctx, o)
}

func serveSMTP(ctx context.Context, args []string, logf func(string, ...any)) error {
	fs := pflag.NewFlagSet("serve-smtp", pflag.ContinueOnError)
	addr := fs.String("addr", "192.0.2.1:25", "listen address")
	maildir := fs.String("maildir", "", "where messages are stored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maildir == "" {
		return errors.New("--maildir is required")
	}
	return lab.ServeSMTP(ctx, *addr, *maildir, logf)
}
