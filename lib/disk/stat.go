package disk

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Stats is what statfs says about one filesystem, in bytes and inodes.
type Stats struct {
	Total  uint64 // f_blocks: the whole filesystem, df's "Size"
	Free   uint64 // f_bfree: free, reserved blocks included
	Avail  uint64 // f_bavail: free to unprivileged users
	Inodes uint64 // f_files; 0 when the filesystem has no fixed inode table (btrfs, vfat)
	IFree  uint64 // f_ffree
}

// StatFunc reads one filesystem's figures; tests stand in for statfs.
type StatFunc func(path string) (Stats, error)

// Statfs is statfs(2). Blocks count in f_frsize where the kernel fills it
// in, as df does; f_bsize is only the preferred I/O size.
func Statfs(path string) (Stats, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return Stats{}, err
	}
	bs := uint64(s.Frsize)
	if bs == 0 {
		bs = uint64(s.Bsize)
	}
	return Stats{
		Total:  s.Blocks * bs,
		Free:   s.Bfree * bs,
		Avail:  s.Bavail * bs,
		Inodes: s.Files,
		IFree:  s.Ffree,
	}, nil
}

// ErrTimeout is a statfs that did not return within --mount-timeout.
var ErrTimeout = errors.New("statfs timed out")

// Reading is one mount with its figures or why there are none.
type Reading struct {
	Mount
	Stats Stats
	Err   error // ErrTimeout, or statfs's error
}

// StatAll runs stat on every mount at once and waits until each has
// answered or timeout has passed, whichever is first. A mount that has not
// answered by then gets ErrTimeout and the others are still reported: a
// hung NFS server blocks statfs in the kernel, uninterruptibly, and must
// not take the whole check down with it. The stuck goroutine is left
// behind; the process ends soon after anyway. step is told which mount is
// being waited for, so that should the whole check time out, its message
// names one.
func StatAll(ctx context.Context, mounts []Mount, timeout time.Duration, stat StatFunc, step func(path string)) []Reading {
	type answer struct {
		i   int
		st  Stats
		err error
	}
	out := make([]Reading, len(mounts))
	pending := make([]bool, len(mounts))
	ch := make(chan answer, len(mounts)) // buffered: a late answer must not block its goroutine
	for i, m := range mounts {
		out[i].Mount = m
		pending[i] = true
		go func() {
			st, err := stat(m.Path)
			ch <- answer{i, st, err}
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for left := len(mounts); left > 0; left-- {
		for i := range pending {
			if pending[i] {
				step(mounts[i].Path)
				break
			}
		}
		select {
		case a := <-ch:
			out[a.i].Stats, out[a.i].Err = a.st, a.err
			pending[a.i] = false
		case <-ctx.Done():
			for i := range pending {
				if pending[i] {
					out[i].Err = ErrTimeout
				}
			}
			return out
		}
	}
	return out
}
