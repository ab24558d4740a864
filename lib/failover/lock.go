package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"pbxha/lib/flock"
)

// ErrLocked is returned when another handler held the lock for the whole
// wait.
var ErrLocked = errors.New("another event handler holds the failover lock")

// Lock takes an exclusive flock on path, waiting up to wait. The kernel
// drops the lock when the process dies, so a crashed handler never leaves
// it stuck. The returned func releases it.
func Lock(ctx context.Context, path string, wait time.Duration) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err := flock.Lock(wctx, path, 0o644)
	if errors.Is(err, flock.ErrHeld) && ctx.Err() == nil {
		return nil, fmt.Errorf("%w (%s) after %s", ErrLocked, path, wait)
	}
	return unlock, err
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
