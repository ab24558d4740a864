package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pbxha/testharness/netnsdial"
)

// sample is one run of one command.
type sample struct {
	wall time.Duration
	cpu  time.Duration // user + system, the child and what it waited for
	rss  float64       // peak resident set, MiB
	exit int
}

type sideResult struct {
	side
	samples []sample
	rssRuns []float64 // MiB, from the -rss launcher when there is one
	first   string    // first output line of the last run
	err     string    // a run that could not be started or measured
}

type pairResult struct {
	pair
	ours, peer sideResult
}

// runTimeout bounds one run: a hung check must not hang the harness. Every
// check has its own -t of 10 s by default, so this only catches a broken one.
const runTimeout = 30 * time.Second

func runOnce(s side) (sample, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	wall, err := runInNetns(s.netns, cmd)
	if cmd.ProcessState == nil {
		return sample{}, "", err
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return sample{}, "", err
	}
	if ctx.Err() != nil {
		return sample{}, "", fmt.Errorf("killed after %s", runTimeout)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, "", errors.New("no rusage from wait4")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	first, _, _ := strings.Cut(out.String(), "\n")
	return sample{
		wall: wall,
		cpu:  cpu,
		rss:  float64(ru.Maxrss) / 1024, // Linux reports KiB
		exit: cmd.ProcessState.ExitCode(),
	}, first, nil
}

// runInNetns runs cmd and returns the time around Run. With a namespace,
// Run happens on an OS thread switched into it (netnsdial.Do): the child
// is forked from that thread and inherits its network namespace, so a
// check runs as if started inside the node, with no wrapper process
// (`ip netns exec` or nsenter would add an exec and a mount namespace to
// every run of both sides). The switch happens outside the timed span.
func runInNetns(ns string, cmd *exec.Cmd) (time.Duration, error) {
	var wall time.Duration
	var runErr error
	err := netnsdial.Do(ns, func() error {
		start := time.Now()
		runErr = cmd.Run()
		wall = time.Since(start)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return wall, runErr
}

// rssTool runs a command and writes its peak RSS in KiB to a file. The
// rusage that a Go parent gets from wait4 cannot be used for that:
// os/exec starts the child with vfork, and at exec the kernel keeps the
// old (shared, the harness's) mm's high-water mark in the child's
// ru_maxrss, so every child looks at least as big as the harness (~6 MiB).
// GNU time forks from its own small process (~1 MiB, the size of
// /bin/true), so the floor is far below anything we measure.
var rssTool = "/usr/bin/time"

// rssOnce measures the peak RSS of one run of s under rssTool.
func rssOnce(s side, tmp string) (float64, error) {
	out := filepath.Join(tmp, "rss")
	_ = os.Remove(out)
	argv := append([]string{"-f", "%M", "-o", out}, s.argv...)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rssTool, argv...)
	cmd.Env = append(os.Environ(), s.env...)
	if _, err := runInNetns(s.netns, cmd); cmd.ProcessState == nil {
		return 0, fmt.Errorf("%s did not run: %v", rssTool, err)
	} // else the check's own exit code passes through time
	text, err := os.ReadFile(out)
	if err != nil {
		return 0, fmt.Errorf("%s wrote no result: %w", rssTool, err)
	}
	// On a non-zero exit GNU time writes "Command exited with non-zero
	// status N" first; the figure is the last line.
	lines := strings.Fields(strings.TrimSpace(string(text)))
	if len(lines) == 0 {
		return 0, fmt.Errorf("%s wrote an empty result", rssTool)
	}
	kib, err := strconv.ParseFloat(lines[len(lines)-1], 64)
	if err != nil {
		return 0, fmt.Errorf("%s wrote %q: %w", rssTool, text, err)
	}
	return kib / 1024, nil
}

// measurePair warms both sides up, then alternates them run by run, and
// swaps which goes first every round, so a burst of load from elsewhere
// on the machine falls on both sides alike.
func measurePair(o options, p pair, tmp string, useRSSTool bool) pairResult {
	r := pairResult{pair: p, ours: sideResult{side: p.ours}, peer: sideResult{side: p.peer}}
	sides := []*sideResult{&r.ours, &r.peer}
	if p.before != nil {
		if err := p.before(); err != nil {
			r.ours.err, r.peer.err = "setup: "+err.Error(), "setup: "+err.Error()
			return r
		}
	}
	for _, s := range sides {
		if s.missing != "" {
			continue
		}
		for i := 0; i < o.warmup; i++ {
			if _, _, err := runOnce(s.side); err != nil {
				s.err = err.Error()
				break
			}
		}
	}
	for i := 0; i < o.n; i++ {
		order := sides
		if i%2 == 1 {
			order = []*sideResult{&r.peer, &r.ours}
		}
		for _, s := range order {
			if s.missing != "" || s.err != "" {
				continue
			}
			smp, first, err := runOnce(s.side)
			if err != nil {
				s.err = err.Error()
				continue
			}
			s.samples = append(s.samples, smp)
			s.first = first
			if useRSSTool {
				if rss, err := rssOnce(s.side, tmp); err == nil {
					s.rssRuns = append(s.rssRuns, rss)
				} else {
					s.err = err.Error()
				}
			}
		}
	}
	return r
}

// quantile is the nearest-rank quantile, except q = 0.5 which is the usual
// median (mean of the middle two for an even count).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if q == 0.5 {
		m := len(s) / 2
		if len(s)%2 == 0 {
			return (s[m-1] + s[m]) / 2
		}
		return s[m]
	}
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func (s sideResult) wallMS() []float64 {
	return collect(s.samples, func(x sample) float64 { return float64(x.wall) / 1e6 })
}

func (s sideResult) cpuMS() []float64 {
	return collect(s.samples, func(x sample) float64 { return float64(x.cpu) / 1e6 })
}

func (s sideResult) rssMiB() []float64 {
	if len(s.rssRuns) > 0 {
		return s.rssRuns
	}
	return collect(s.samples, func(x sample) float64 { return x.rss })
}

func collect(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, x := range ss {
		out[i] = f(x)
	}
	return out
}

// exits summarises exit codes as "0×30" or "0×28, 3×2".
func (s sideResult) exits() string {
	count := map[int]int{}
	for _, x := range s.samples {
		count[x.exit]++
	}
	codes := make([]int, 0, len(count))
	for c := range count {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d×%d", c, count[c])
	}
	return strings.Join(parts, ", ")
}

// allExit reports whether every run ended with code.
func (s sideResult) allExit(code int) bool {
	for _, x := range s.samples {
		if x.exit != code {
			return false
		}
	}
	return len(s.samples) > 0
}

func (s sideResult) anyExit(code int) bool {
	for _, x := range s.samples {
		if x.exit == code {
			return true
		}
	}
	return false
}
