package lab

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockPath is the lab lock: the root's path plus ".lock" (/tmp/pbxlab.lock),
// beside the root rather than in it, so it outlives `down`.
func LockPath() string { return Root() + ".lock" }

// Lock takes the lab lock (flock), waiting until ctx ends. Tests take it
// before they touch the lab so test packages run in parallel never act on
// it at the same time; `pbxlab up` and `down` take it too. unlock releases
// it. The lock is per open file: a process holding it must not take it
// again.
func Lock(ctx context.Context) (unlock func(), err error) { return lockFile(ctx, LockPath()) }

func lockFile(ctx context.Context, path string) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening the lab lock: %w", err)
		}
		if err := flockWait(ctx, f, path); err != nil {
			f.Close()
			return nil, err
		}
		// The holder before us may have removed the file (`down` does):
		// then our lock is on a file nobody else will open. Start over.
		var a, b syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &a) == nil && syscall.Stat(path, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			return func() { f.Close() }, nil
		}
		f.Close()
	}
}

func flockWait(ctx context.Context, f *os.File, path string) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != syscall.EWOULDBLOCK {
			return fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			holder, _ := os.ReadFile(path)
			return fmt.Errorf("the lab lock %s is held by pid %s: %w", path, strings.TrimSpace(string(holder)), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RemoveLockFile deletes the lab lock file. Call it while holding the
// lock (pbxlab down does, so that down leaves nothing behind): a waiter that
// opened the old file notices and retries on a new one.
func RemoveLockFile() { _ = os.Remove(LockPath()) }
