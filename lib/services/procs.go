package services

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
)

// DefaultProcfs is where the kernel's process table is mounted.
const DefaultProcfs = "/proc"

// pfKthread is PF_KTHREAD in the stat flags word (include/linux/sched.h).
const pfKthread = 0x00200000

// Proc is what the check needs of one process.
type Proc struct {
	PID, PPID int
	State     string   // one letter: R, S, D, Z, ...
	Comm      string   // the kernel's name, at most 15 bytes
	Argv      []string // nil when not read (zombies, kernel threads)
	Kernel    bool     // a kernel thread
}

// Countable reports whether the process can be a running service: zombies
// have exited (only their exit status is left for the parent) and kernel
// threads merely share names with daemons ("kworker", but also any name a
// driver picks).
func (p Proc) Countable() bool {
	switch {
	case p.Kernel, p.State == "Z", p.State == "X", p.State == "x":
		return false
	}
	return len(p.Argv) > 0
}

// ProcList is a snapshot of the process table.
type ProcList struct {
	Procs []Proc
	// Vanished counts processes listed but gone before they could be read:
	// they exited in between, which is no error.
	Vanished int
	// Unreadable holds the errors of processes that exist but could not be
	// read; they cannot be matched.
	Unreadable []error
}

// vanished reports whether err means the process exited while we read it:
// its directory is gone (ENOENT) or the task is being torn down (ESRCH).
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// ReadProcs reads every process under root (a procfs mount, or a fixture
// tree with PID/stat and PID/cmdline). The command line is read only for
// processes that can be services.
func ReadProcs(ctx context.Context, root string) (ProcList, error) {
	var out ProcList
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return out, fmt.Errorf("opening %s: %w", root, err)
	}
	all, err := pfs.AllProcs()
	if err != nil {
		return out, fmt.Errorf("listing processes in %s: %w", root, err)
	}
	sort.Sort(all)
	for _, p := range all {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		st, err := p.Stat()
		if err != nil {
			if vanished(err) {
				out.Vanished++
			} else {
				out.Unreadable = append(out.Unreadable, fmt.Errorf("reading %s: %w", filepath.Join(root, strconv.Itoa(p.PID), "stat"), err))
			}
			continue
		}
		pr := Proc{PID: p.PID, PPID: st.PPID, State: st.State, Comm: st.Comm, Kernel: st.Flags&pfKthread != 0}
		if !pr.Kernel && pr.State != "Z" && pr.State != "X" && pr.State != "x" {
			argv, err := p.CmdLine()
			switch {
			case err != nil && vanished(err):
				out.Vanished++
				continue
			case err != nil:
				out.Unreadable = append(out.Unreadable, fmt.Errorf("reading %s: %w", filepath.Join(root, strconv.Itoa(p.PID), "cmdline"), err))
				continue
			case len(argv) == 0:
				// No command line: a kernel thread on a kernel without
				// PF_KTHREAD in stat, or a process whose memory is
				// already gone on its way out.
				pr.Kernel = true
			}
			pr.Argv = argv
		}
		out.Procs = append(out.Procs, pr)
	}
	return out, nil
}

// Self identifies the running check, so that it never counts itself.
type Self struct {
	PID int
	// Exe is the check's own executable (os.Stat of /proc/self/exe); nil
	// when unknown.
	Exe os.FileInfo
}

// SameExe reports whether process pid runs the check's own executable. A
// process whose exe link cannot be read (another user's, or gone) is not.
func (s Self) SameExe(root string, pid int) bool {
	if s.Exe == nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, strconv.Itoa(pid), "exe"))
	return err == nil && os.SameFile(fi, s.Exe)
}
