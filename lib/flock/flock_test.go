package flock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// Held: a second taker waits until its ctx ends, and says why.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path, 0o644); !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v", err)
	}
	// An ended ctx still gets one try: free, it is taken.
	unlock()
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	unlock2, err := Lock(done, path, 0o644)
	if err != nil {
		t.Fatalf("free lock with an ended ctx: %v", err)
	}
	// Released while a taker waits: it gets it.
	go func() { time.Sleep(50 * time.Millisecond); unlock2() }()
	ctx3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	unlock3, err := Lock(ctx3, path, 0o644)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock3()
	if _, err := Lock(context.Background(), filepath.Join(t.TempDir(), "no", "dir", "x.lock"), 0o644); err == nil {
		t.Fatal("a lock file in a missing dir: no error")
	}
}
