// Package flock takes an exclusive flock(2) on a lock file. The kernel
// drops it when the process dies, so a crashed holder never leaves it
// stuck.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// poll is how often a held lock is tried again.
const poll = 20 * time.Millisecond

// ErrHeld wraps ctx's error when ctx ended while another process held
// the lock.
var ErrHeld = errors.New("held by another process")

// Lock opens (creating it with perm) path and takes its exclusive lock,
// trying at once and then until ctx ends. The returned func releases it.
func Lock(ctx context.Context, path string, perm os.FileMode) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
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
			return nil, fmt.Errorf("%s: %w: %w", path, ErrHeld, ctx.Err())
		case <-time.After(poll):
		}
	}
}
