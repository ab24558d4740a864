package eventhandler

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/failover"
	"pbxha/lib/filesync"
	"pbxha/lib/rsyncd/rsyncdtest"
)

// syncSetup writes a cluster.toml for node2 whose one sync dir is pushed
// to module auth of d (nil: no daemon), and the state role at epoch 2.
func syncSetup(t *testing.T, d *rsyncdtest.Daemon, role string) (cfgPath, src, stateFile, runDir string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "sync")
	if err := os.MkdirAll(filepath.Join(src, "voicemail"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "voicemail", "msg0000.wav"), []byte("RIFF...."), 0o644)
	os.WriteFile(filepath.Join(src, "extensions.conf"), []byte("[default]\n"), 0o644)
	pw := filepath.Join(dir, "rsync.pw")
	os.WriteFile(pw, []byte(rsyncdtest.Password+"\n"), 0o600)
	stateFile, runDir = filepath.Join(dir, "state.json"), filepath.Join(dir, "run")
	text := `cluster_id = "lab"
node = "node2"
state_file = "` + stateFile + `"
run_dir = "` + runDir + `"
[[nodes]]
name = "node1"
cluster_ip = "127.0.0.1"
[[nodes]]
name = "node2"
cluster_ip = "127.0.0.2"
[sync]
dirs = ["` + src + `"]
excludes = ["*.tmp"]
rsync_module = "auth"
rsync_user = "` + rsyncdtest.User + `"
rsync_password = { file = "` + pw + `" }
`
	cfgPath = filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if role != "" {
		if err := cluster.WriteState(stateFile, cluster.State{Node: "node2", Role: role, Epoch: 2}); err != nil {
			t.Fatal(err)
		}
	}
	port := 1
	if d != nil {
		port = d.Port
	}
	old := syncOptions
	syncOptions = func(o *filesync.Options) { o.Host, o.Port = "127.0.0.1", port }
	t.Cleanup(func() { syncOptions = old })
	return cfgPath, src, stateFile, runDir
}

// peerIs makes the peer answer with st (or err).
func peerIs(t *testing.T, st cluster.State, err error) *int {
	t.Helper()
	asked := new(int)
	old := syncPeerState
	syncPeerState = func(context.Context, *handler) (cluster.State, error) { *asked++; return st, err }
	t.Cleanup(func() { syncPeerState = old })
	return asked
}

func runSync(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"sync"}, args...), &out, &errb)
	t.Logf("exit %d: %s%s", code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func readLog(t *testing.T, runDir string) string {
	b, _ := os.ReadFile(filepath.Join(runDir, "eventhandler.log"))
	return string(b)
}

func TestSyncNotMaster(t *testing.T) {
	for _, role := range []string{cluster.Slave, cluster.Standby} {
		t.Run(role, func(t *testing.T) {
			cfg, _, _, runDir := syncSetup(t, nil, role)
			asked := peerIs(t, cluster.State{}, errors.New("must not be asked"))
			code, out, errs := runSync(t, "--config", cfg)
			if code != ExitOK || out != "this node is "+role+": the master pushes\n" || errs != "" || *asked != 0 {
				t.Fatalf("exit %d %q %q asked %d", code, out, errs, *asked)
			}
			if l := readLog(t, runDir); l != "" {
				t.Errorf("a no-op logged %q", l)
			}
		})
	}
}

func TestSyncNoState(t *testing.T) {
	cfg, _, _, runDir := syncSetup(t, nil, "")
	code, out, _ := runSync(t, "--config", cfg)
	if code != ExitFailed || !strings.HasPrefix(out, "sync failed: cannot tell this node's role: ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d %q", code, out)
	}
	if !strings.Contains(readLog(t, runDir), "sync FAILED: cannot tell this node's role") {
		t.Error("not logged")
	}
}

func TestSyncUsage(t *testing.T) {
	cfg, _, _, _ := syncSetup(t, nil, cluster.Master)
	if code, _, _ := runSync(t, "--nosuch"); code != ExitUsage {
		t.Errorf("--nosuch: exit %d", code)
	}
	for _, args := range [][]string{{"--config", cfg, "extra"}, {"--config", cfg, "--timeout", "0s"}, {"--config", "/nonexistent/cluster.toml"}} {
		if code, _, errs := runSync(t, args...); code != ExitUsage || errs == "" {
			t.Errorf("%q: exit %d %q", args, code, errs)
		}
	}
}

func TestSyncPushes(t *testing.T) {
	d := rsyncdtest.Start(t)
	cfg, src, _, runDir := syncSetup(t, d, cluster.Master)
	dst := d.ModuleDir("auth")
	os.WriteFile(filepath.Join(dst, "only-on-the-slave"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dst, ".pbxha-canary"), []byte("canary"), 0o644)
	os.WriteFile(filepath.Join(src, "scratch.tmp"), []byte("x"), 0o644)
	peerIs(t, cluster.State{Node: "node1", Role: cluster.Slave, Epoch: 2}, nil)

	// Dry run first: nothing moves.
	code, out, _ := runSync(t, "--config", cfg, "--dry-run")
	if code != ExitOK || !regexp.MustCompile(`^dry run, nothing changed to node1: 1 dir to module auth on 127\.0\.0\.1:[0-9]+: 2 files to transfer \(18 bytes\), 1 to delete, [0-9]+ entries in the dirs, in [0-9.]+s\n$`).MatchString(out) {
		t.Fatalf("dry run: exit %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "extensions.conf")); err == nil {
		t.Fatal("the dry run pushed")
	}

	code, out, _ = runSync(t, "--config", cfg)
	if code != ExitOK || !regexp.MustCompile(`^pushed to node1: 1 dir to module auth on 127\.0\.0\.1:[0-9]+: 2 files transferred \(18 bytes\), 1 deleted, [0-9]+ entries in the dirs, in [0-9.]+s\n$`).MatchString(out) {
		t.Fatalf("exit %d %q", code, out)
	}
	for name, want := range map[string]bool{"extensions.conf": true, "voicemail/msg0000.wav": true, "only-on-the-slave": false, ".pbxha-canary": true, "scratch.tmp": false} {
		if _, err := os.Stat(filepath.Join(dst, name)); (err == nil) != want {
			t.Errorf("%s on the slave: %v, want %v", name, err == nil, want)
		}
	}
	if l := readLog(t, runDir); !strings.Contains(l, "sync: pushed to node1: 1 dir to module auth") || strings.Contains(l, rsyncdtest.Password) {
		t.Errorf("log %q", l)
	}
}

func TestSyncPeerGate(t *testing.T) {
	cases := []struct {
		name string
		peer cluster.State
		err  error
		code int
		want string
	}{
		{"standby", cluster.State{Role: cluster.Standby, Epoch: 1}, nil, ExitOK,
			"nothing pushed: node1 is standby (epoch 1), not this master's slave; the push resumes after `pbxha-eventhandler rejoin` there\n"},
		{"another master", cluster.State{Role: cluster.Master, Epoch: 3}, nil, ExitFailed,
			"sync failed: node1 is master at epoch 3 (this node: master at epoch 2): two masters? nothing pushed\n"},
		{"slave of a newer master", cluster.State{Role: cluster.Slave, Epoch: 3}, nil, ExitFailed,
			"sync failed: node1 is at epoch 3, above this node's 2: this node's mastership is stale; nothing pushed\n"},
		{"unreachable", cluster.State{}, errors.New("dial tcp 127.0.0.1:22: connection refused"), ExitFailed,
			"sync failed: cannot ask node1 for its role over SSH (dial tcp 127.0.0.1:22: connection refused): nothing pushed\n"},
	}
	// One daemon: each start leaves a short-lived child (the readiness
	// probe's connection) writing its log.
	d := rsyncdtest.Start(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, _, _ := syncSetup(t, d, cluster.Master)
			peerIs(t, c.peer, c.err)
			code, out, _ := runSync(t, "--config", cfg)
			if code != c.code || out != c.want {
				t.Fatalf("exit %d %q\nwant %d %q", code, out, c.code, c.want)
			}
			if _, err := os.Stat(filepath.Join(d.ModuleDir("auth"), "extensions.conf")); err == nil {
				t.Fatal("pushed anyway")
			}
		})
	}
}

func TestSyncLocked(t *testing.T) {
	cfg, _, _, runDir := syncSetup(t, nil, cluster.Master)
	asked := peerIs(t, cluster.State{Role: cluster.Slave}, nil)
	unlock, err := failover.Lock(context.Background(), filepath.Join(runDir, "sync.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, out, _ := runSync(t, "--config", cfg)
	if code != ExitOK || out != "another sync is running\n" || *asked != 0 {
		t.Fatalf("exit %d %q", code, out)
	}
}

// slowRsync is a stand-in rsync that hangs (and records its pid).
func slowRsync(t *testing.T) (bin, pidFile string) {
	dir := t.TempDir()
	bin, pidFile = filepath.Join(dir, "rsync"), filepath.Join(dir, "pid")
	os.WriteFile(bin, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nsleep 30\n"), 0o755)
	return bin, pidFile
}

func TestSyncDeadlineAndRoleChange(t *testing.T) {
	bin, _ := slowRsync(t)
	t.Run("deadline", func(t *testing.T) {
		cfg, _, _, _ := syncSetup(t, nil, cluster.Master)
		peerIs(t, cluster.State{Role: cluster.Slave, Epoch: 2}, nil)
		old := syncOptions
		syncOptions = func(o *filesync.Options) { old(o); o.Rsync = bin }
		t0 := time.Now()
		code, out, _ := runSync(t, "--config", cfg, "--timeout", "700ms")
		if code != ExitFailed || !regexp.MustCompile(`^sync failed: push from node2 to node1 after [0-9.]+m?s: /.*/sync: rsync stopped after [0-9.]+m?s: the sync's deadline \(--timeout 700ms\) passed\n$`).MatchString(out) {
			t.Fatalf("exit %d %q", code, out)
		}
		if took := time.Since(t0); took > 700*time.Millisecond+filesync.WaitDelay+time.Second {
			t.Fatalf("took %s", took)
		}
	})
	t.Run("demoted during the push", func(t *testing.T) {
		cfg, _, stateFile, _ := syncSetup(t, nil, cluster.Master)
		peerIs(t, cluster.State{Role: cluster.Slave, Epoch: 2}, nil)
		old := syncOptions
		syncOptions = func(o *filesync.Options) { old(o); o.Rsync = bin }
		go func() {
			time.Sleep(300 * time.Millisecond)
			cluster.WriteState(stateFile, cluster.State{Node: "node2", Role: cluster.Standby, Epoch: 2})
		}()
		t0 := time.Now()
		code, out, _ := runSync(t, "--config", cfg)
		if code != ExitFailed || !strings.Contains(out, "rsync stopped after ") || !strings.HasSuffix(out, "this node stopped being master during the push (now standby)\n") {
			t.Fatalf("exit %d %q", code, out)
		}
		if took := time.Since(t0); took > 300*time.Millisecond+syncWatch+filesync.WaitDelay+time.Second {
			t.Fatalf("took %s", took)
		}
	})
}
