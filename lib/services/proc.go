package services

import (
	"context"
	"os"

	"github.com/prometheus/procfs"
)

// ReadProcs lists the processes under a procfs root, skipping those that
// exit while being read (a race every /proc reader has) and this process.
func ReadProcs(ctx context.Context, root string) ([]Proc, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, err
	}
	all, err := pfs.AllProcs()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := make([]Proc, 0, len(all))
	for _, p := range all {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if p.PID == self {
			continue
		}
		argv, err := p.CmdLine()
		if gone(err) {
			continue
		}
		comm, err := p.Comm()
		if gone(err) {
			continue
		}
		st, err := p.Stat()
		if gone(err) {
			continue
		}
		out = append(out, Proc{PID: p.PID, Comm: comm, Argv: argv, State: st.State})
	}
	return out, nil
}

// gone is true for any error reading one process: it exited between the
// listing and the read (ENOENT, ESRCH) or hidepid hides it (EACCES). Skip
// it rather than fail the whole check.
func gone(err error) bool { return err != nil }
