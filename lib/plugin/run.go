package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
)

// Version is set at build time (-ldflags "-X pbxha/lib/plugin.Version=...").
var Version = "dev"

// DefaultTimeout is the -t default, as in monitoring-plugins.
const DefaultTimeout = 10 * time.Second

// Roles a check can be asked to apply to (--role).
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
	RoleAny    = "any"
)

// Spec describes one check binary.
type Spec struct {
	Name        string // output prefix, e.g. "PBX_DISK"
	Binary      string // e.g. "check_pbx_disk", for -h and -V
	Description string // one paragraph for -h
	Examples    []string
	// DefaultRole is where the check is meaningful: RoleMaster, RoleSlave or
	// RoleAny (the default when empty).
	DefaultRole string
	// Flags registers the check's own flags.
	Flags func(fs *pflag.FlagSet)
	// Validate runs after parsing; an error is a usage error (UNKNOWN, exit 3)
	// and should name the flag.
	Validate func(env *Env) error
	// Gate decides, before the check runs, whether this node's role lets it
	// apply. It returns a skip reason ("node is slave (applies to master)")
	// or "" to run. lib/cluster provides the usual one. nil runs always.
	Gate func(ctx context.Context, env *Env) (skip string, err error)
	// Check does the work. It must honour ctx; Run enforces the deadline
	// regardless.
	Check func(ctx context.Context, env *Env) Result
}

// Env is what every check gets besides its own flags.
type Env struct {
	Verbose    int
	Timeout    time.Duration
	TimeoutSt  State
	ConfigPath string // --config, else $PBXHA_CONFIG, else ""
	ConfigSet  bool   // --config or $PBXHA_CONFIG was given explicitly
	Role       string // --role, or the check's default
	Flags      *pflag.FlagSet

	step  atomic.Pointer[string]
	mu    sync.Mutex
	debug []string
}

// Step records what the check is doing now; a timeout names it.
func (e *Env) Step(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	e.step.Store(&s)
	e.Debugf(2, "step: %s", s)
}

func (e *Env) currentStep() string {
	if p := e.step.Load(); p != nil {
		return *p
	}
	return "starting"
}

// Debugf adds a line to the long output when -v was given at least level
// times. Nothing else in a check prints.
func (e *Env) Debugf(level int, format string, args ...any) {
	if e.Verbose < level {
		return
	}
	e.mu.Lock()
	e.debug = append(e.debug, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *Env) debugLines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.debug...)
}

// UsageError marks an error as the user's: Run reports it as UNKNOWN with
// exit 3 and "usage:" in front.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return UsageError{Err: fmt.Errorf(format, args...)}
}

// UsageResult is the result for a usage error found while checking (a
// missing setting in cluster.toml, say).
func UsageResult(err error) Result {
	return Result{State: Unknown, Summary: "usage: " + oneLine(err.Error())}
}

// timeoutValue is -t SECONDS[:STATE].
type timeoutValue struct {
	d  time.Duration
	st State
}

func (t *timeoutValue) String() string {
	s := strconv.FormatFloat(t.d.Seconds(), 'f', -1, 64)
	if t.st != Critical {
		s += ":" + t.st.String()
	}
	return s
}

func (t *timeoutValue) Set(v string) error {
	secs, st, has := strings.Cut(v, ":")
	f, err := strconv.ParseFloat(secs, 64)
	if err != nil || f <= 0 || f > 86400 {
		return fmt.Errorf("%q is not a number of seconds between 0 and 86400", secs)
	}
	t.d = time.Duration(f * float64(time.Second))
	t.st = Critical
	if has {
		if t.st, err = ParseState(st); err != nil {
			return err
		}
	}
	return nil
}

func (t *timeoutValue) Type() string { return "seconds[:state]" }

type roleValue struct{ s *string }

func (r roleValue) String() string { return *r.s }
func (r roleValue) Set(v string) error {
	switch v {
	case RoleMaster, RoleSlave, RoleAny:
		*r.s = v
		return nil
	}
	return fmt.Errorf("%q is not a role (master, slave, any)", v)
}
func (r roleValue) Type() string { return "role" }

// Run runs the check with os.Args and exits with its state. It is the only
// exit of a plugin.
func Run(spec Spec) {
	os.Exit(Execute(spec, os.Args[1:], os.Stdout))
}

// Execute runs the check with args, writes the output to out and returns the
// exit code. On a timeout it returns at the deadline even though the check's
// goroutine may still be running: Run then exits the process, which is what
// ends it. Tests call Execute directly.
func Execute(spec Spec, args []string, out io.Writer) int {
	var (
		env      = &Env{ConfigPath: os.Getenv("PBXHA_CONFIG")}
		tv       = timeoutValue{d: DefaultTimeout, st: Critical}
		showHelp bool
		showVer  bool
	)
	env.ConfigSet = env.ConfigPath != ""
	role := spec.DefaultRole
	if role == "" {
		role = RoleAny
	}
	fs := pflag.NewFlagSet(spec.Binary, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	env.Flags = fs
	if spec.Flags != nil {
		spec.Flags(fs)
	}
	fs.BoolVarP(&showHelp, "help", "h", false, "print this help and exit (exit code 3)")
	fs.BoolVarP(&showVer, "version", "V", false, "print the version and exit (exit code 3)")
	fs.CountVarP(&env.Verbose, "verbose", "v", "more detail in the long output; up to three times")
	fs.VarP(&tv, "timeout", "t", "exit by then whatever happens, with STATE (CRITICAL unless given)")
	fs.StringVar(&env.ConfigPath, "config", env.ConfigPath, "cluster config file (default $PBXHA_CONFIG or /etc/pbxha/cluster.toml when present)")
	fs.Var(roleValue{&role}, "role", "where the check applies: master, slave or any; on a node of another role it returns OK, skipped")

	usage := func(err error) int {
		r := UsageResult(err)
		r.Long = []string{"Try '" + spec.Binary + " --help'."}
		io.WriteString(out, r.Format(spec.Name))
		return int(Unknown)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			io.WriteString(out, helpText(spec, fs))
			return int(Unknown)
		}
		return usage(err)
	}
	if showHelp {
		io.WriteString(out, helpText(spec, fs))
		return int(Unknown)
	}
	if showVer {
		fmt.Fprintf(out, "%s (pbxha) %s\n", spec.Binary, Version)
		return int(Unknown)
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	env.ConfigSet = env.ConfigSet || fs.Changed("config")
	env.Role = role
	env.Timeout = tv.d
	env.TimeoutSt = tv.st
	if spec.Validate != nil {
		if err := spec.Validate(env); err != nil {
			return usage(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), tv.d)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r := Result{State: Unknown, Summary: oneLine(fmt.Sprintf("internal error: %v", p))}
				if env.Verbose >= 3 {
					r.Long = strings.Split(strings.TrimRight(string(debug.Stack()), "\n"), "\n")
				}
				done <- r
			}
		}()
		done <- runChecked(ctx, spec, env)
	}()

	var res Result
	select {
	case res = <-done:
		if ctx.Err() != nil {
			res = timeoutResult(env)
		}
	case <-ctx.Done():
		res = timeoutResult(env)
	}
	res.Long = append(res.Long, env.debugLines()...)
	io.WriteString(out, res.Format(spec.Name))
	return int(res.Overall())
}

func runChecked(ctx context.Context, spec Spec, env *Env) Result {
	if spec.Gate != nil && env.Role != RoleAny {
		env.Step("reading this node's role")
		skip, err := spec.Gate(ctx, env)
		if err != nil {
			var u UsageError
			if errors.As(err, &u) {
				return UsageResult(err)
			}
			return Result{State: Unknown, Summary: oneLine(err.Error())}
		}
		if skip != "" {
			return Result{State: OK, Summary: "skipped: " + skip}
		}
	}
	if spec.Check == nil {
		return Result{State: Unknown, Summary: "internal error: no check"}
	}
	return spec.Check(ctx, env)
}

func timeoutResult(env *Env) Result {
	return Result{
		State:   env.TimeoutSt,
		Summary: fmt.Sprintf("timed out after %ss while %s", strconv.FormatFloat(env.Timeout.Seconds(), 'f', -1, 64), env.currentStep()),
	}
}

func helpText(spec Spec, fs *pflag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pbxha) %s\n\n", spec.Binary, Version)
	if spec.Description != "" {
		b.WriteString(spec.Description)
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "Usage: %s [flags]\n\nFlags:\n%s", spec.Binary, fs.FlagUsages())
	if len(spec.Examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range spec.Examples {
			b.WriteString("  " + e + "\n")
		}
	}
	b.WriteString("\nExit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h, -V and usage errors).\n")
	return b.String()
}
