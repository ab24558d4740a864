package fssync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"pbxha/lib/config"
	"pbxha/lib/fssync/manifest"
	"pbxha/lib/peer"
	"pbxha/lib/peer/peertest"
)

// scaleTree is 100 000 files in 600 directories (300 of 300 files each
// under another 300), made once per run and removed by TestMain.
var (
	scaleOnce sync.Once
	scaleDir  string
	scaleErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if scaleDir != "" {
		os.RemoveAll(scaleDir)
	}
	os.Exit(code)
}

func makeScaleTree(b *testing.B) string {
	scaleOnce.Do(func() {
		scaleDir, scaleErr = os.MkdirTemp("", "fssync-scale")
		if scaleErr != nil {
			return
		}
		for i := range 100_000 {
			d := filepath.Join(scaleDir, fmt.Sprintf("ext%03d", i%300), fmt.Sprintf("INBOX%d", i%3))
			if i < 900 {
				if scaleErr = os.MkdirAll(d, 0o755); scaleErr != nil {
					return
				}
			}
			if scaleErr = os.WriteFile(filepath.Join(d, fmt.Sprintf("msg%06d.wav", i)), []byte("x"), 0o644); scaleErr != nil {
				return
			}
		}
	})
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	return scaleDir
}

// BenchmarkCompare100k is the scale target: 100 000 files compared with
// the peer's manifest coming over a real SSH connection (peertest on
// loopback), both walks running at once. It reports the process's peak
// RSS.
//
//	go test ./lib/fssync -run '^$' -bench Compare100k -benchtime 3x
func BenchmarkCompare100k(b *testing.B) {
	dir := makeScaleTree(b)
	p := peertest.Start(b, peertest.Options{Server: &peer.Server{Config: &config.Config{Sync: config.Sync{Dirs: []string{dir}}}}})
	ctx := context.Background()
	pc, err := peer.Dial(ctx, p.Config())
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	b.ResetTimer()
	for b.Loop() {
		d, err := CompareWithPeer(ctx, pc, 0, dir, CompareOptions{Options: Options{MaxList: 10}, Checksum: peer.ChecksumNone})
		if err != nil {
			b.Fatal(err)
		}
		if d.Local != 100_600 || d.Remote != d.Local || d.Total() != 0 {
			b.Fatalf("%+v", d)
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peakRSS-MiB")
}

// BenchmarkCompareLocal100k is the merge alone: two in-process walks of
// the same tree, no SSH.
func BenchmarkCompareLocal100k(b *testing.B) {
	dir := makeScaleTree(b)
	for b.Loop() {
		d, err := CompareLocal(context.Background(), dir, nil, manifest.HashPolicy{}, localSource(b, dir, manifest.HashPolicy{}), Options{})
		if err != nil || d.Total() != 0 {
			b.Fatal(err, d)
		}
	}
}
