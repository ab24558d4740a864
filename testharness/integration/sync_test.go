package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/rsyncd"
	"pbxha/testharness/lab"
)

// TestSyncFollowsRoles runs `pbxha-eventhandler sync` in the lab: node1
// (master) pushes its sync dir into node2's module pbx over the cluster
// network — new files arrive, a file only node2 had goes, check_pbx_rsync's
// canary on node2 stays, check_pbx_fs_sync then says in sync — while sync
// on node2 (slave) does nothing. node1 pushes nothing to a standby. After a
// planned switchover the direction follows the roles: node2 pushes, node1
// does nothing.
func TestSyncFollowsRoles(t *testing.T) {
	l := useLab(t)
	primeARP(t, l)
	t.Setenv("PBXHA_CONFIG", "")
	dir1, dir2 := l.SyncDir(lab.Node1), l.SyncDir(lab.Node2)
	node2 := lab.Hosts[1].ClusterIP

	// node1's new voicemail and config; a file only node2 has.
	newFiles := map[string]string{
		"voicemail/default/100/INBOX/msg0000.txt": "[message]\ncallerid=\"Alice\" <200>\n",
		"voicemail/default/100/INBOX/msg0000.wav": strings.Repeat("RIFF", 2000),
		"asterisk/pjsip.conf":                     "[transport-udp]\ntype=transport\n",
	}
	writeTree(t, dir1, newFiles)
	writeTree(t, dir2, map[string]string{"voicemail/default/100/INBOX/msg0009.wav": "deleted on the master"})
	// check_pbx_rsync --canary (run on the slave) leaves its canary in
	// node2's module; the push must leave it there.
	if r := runIn(t, l, lab.Node2, "check_pbx_rsync", "--config", l.ConfigPath(lab.Node2), "--canary"); r.Code != 0 {
		t.Fatalf("check_pbx_rsync --canary on node2: %d %q", r.Code, r.Out)
	}
	canary := filepath.Join(dir2, rsyncd.CanaryName)
	if _, err := os.Stat(canary); err != nil {
		t.Fatalf("no canary on node2: %v", err)
	}

	if r := eh(t, l, lab.Node2, "sync"); r.Code != 0 || r.Out != "this node is slave: the master pushes\n" {
		t.Fatalf("sync on the slave: exit %d %q", r.Code, r.Out)
	}
	if _, err := os.Stat(filepath.Join(dir1, "voicemail/default/100/INBOX/msg0009.wav")); err == nil {
		t.Fatal("the slave pushed")
	}

	// A standby peer (not rejoined) gets nothing.
	setRole(t, l, lab.Node2, cluster.Standby, 1)
	if r := eh(t, l, lab.Node1, "sync"); r.Code != 0 || !strings.HasPrefix(r.Out, "nothing pushed: node2 is standby (epoch 1)") {
		t.Fatalf("sync to a standby: exit %d %q", r.Code, r.Out)
	}
	// Another master at a higher epoch: refused, nothing pushed.
	setRole(t, l, lab.Node2, cluster.Master, 5)
	if r := eh(t, l, lab.Node1, "sync"); r.Code != 1 || r.Out != "sync failed: node2 is master at epoch 5 (this node: master at epoch 1): two masters? nothing pushed\n" {
		t.Fatalf("sync to another master: exit %d %q", r.Code, r.Out)
	}
	if _, err := os.Stat(filepath.Join(dir2, "asterisk/pjsip.conf")); err == nil {
		t.Fatal("pushed to a peer that is not the slave")
	}
	setRole(t, l, lab.Node2, cluster.Slave, 1)

	size := 0
	for _, text := range newFiles {
		size += len(text)
	}
	if r := eh(t, l, lab.Node1, "sync", "--dry-run"); r.Code != 0 || !strings.Contains(r.Out, fmt.Sprintf("dry run, nothing changed to node2: 1 dir to module pbx on %s:873: 3 files to transfer (%d bytes), 1 to delete", node2, size)) {
		t.Fatalf("dry run: exit %d %q", r.Code, r.Out)
	}
	t0 := time.Now()
	r := eh(t, l, lab.Node1, "sync")
	took := time.Since(t0)
	if r.Code != 0 || !regexp.MustCompile(`^pushed to node2: 1 dir to module pbx on `+regexp.QuoteMeta(node2)+`:873: 3 files transferred \(`+fmt.Sprint(size)+` bytes\), 1 deleted, [0-9]+ entries in the dirs, in [0-9.]+s\n$`).MatchString(r.Out) {
		t.Fatalf("sync on the master: exit %d %q", r.Code, r.Out)
	}
	t.Logf("FIGURE: sync of 3 new files node1 -> node2: %s (the whole command, SSH state query included)", took.Round(time.Millisecond))
	sameFiles(t, dir2, newFiles)
	if _, err := os.Stat(filepath.Join(dir2, "voicemail/default/100/INBOX/msg0009.wav")); err == nil {
		t.Error("the file only node2 had survived the push")
	}
	if b, err := os.ReadFile(canary); err != nil || !strings.HasPrefix(string(b), "pbxha canary from ") {
		t.Errorf("check_pbx_rsync's canary on node2 after the push: %q %v", b, err)
	}
	fsSyncOK(t, l, lab.Node1)
	if log, _ := os.ReadFile(filepath.Join(l.HostDir(lab.Node1), "run", "pbxha", "eventhandler.log")); !strings.Contains(string(log), "sync: pushed to node2: ") || strings.Contains(string(log), l.Creds().RsyncPassword) {
		t.Errorf("node1's eventhandler.log:\n%s", log)
	}

	// Many files, for the figure.
	many := map[string]string{}
	for i := range 2000 {
		many[fmt.Sprintf("monitor/2026/01/%02d/rec-%04d.wav", 1+i/100, i)] = strings.Repeat("w", 4096)
	}
	writeTree(t, dir1, many)
	t0 = time.Now()
	if r := eh(t, l, lab.Node1, "sync"); r.Code != 0 || !strings.Contains(r.Out, ": 2000 files transferred (8192000 bytes), 0 deleted") {
		t.Fatalf("sync of 2000 files: exit %d %q", r.Code, r.Out)
	}
	t.Logf("FIGURE: sync of 2000 files of 4 KiB node1 -> node2: %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if r := eh(t, l, lab.Node1, "sync"); r.Code != 0 || !strings.Contains(r.Out, ": 0 files transferred (0 bytes), 0 deleted") {
		t.Fatalf("sync with nothing new: exit %d %q", r.Code, r.Out)
	}
	t.Logf("FIGURE: sync with nothing to do (%d+ entries): %s", len(many), time.Since(t0).Round(time.Millisecond))
	fsSyncOK(t, l, lab.Node1)

	// The planned switchover: node2 master, node1 its slave. The direction
	// follows.
	if r := eh(t, l, lab.Node1, "failover"); r.Code != 0 || !strings.Contains(r.Out, "node2 is master (epoch 2); node1 is slave (epoch 2)") {
		t.Fatalf("switchover to node2: exit %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node2, cluster.Master, 2)
	if r := eh(t, l, lab.Node1, "sync"); r.Code != 0 || r.Out != "this node is slave: the master pushes\n" {
		t.Fatalf("sync on node1, now the slave: exit %d %q", r.Code, r.Out)
	}
	fromNode2 := map[string]string{"voicemail/default/101/INBOX/msg0000.txt": "[message]\ncallerid=\"Bob\" <201>\n"}
	writeTree(t, dir2, fromNode2)
	if err := os.Remove(filepath.Join(dir2, "asterisk/pjsip.conf")); err != nil {
		t.Fatal(err)
	}
	if r := eh(t, l, lab.Node2, "sync"); r.Code != 0 || !strings.HasPrefix(r.Out, "pushed to node1: 1 dir to module pbx on "+lab.Hosts[0].ClusterIP+":873: 1 file transferred (") || !strings.Contains(r.Out, " 1 deleted") {
		t.Fatalf("sync on node2, now the master: exit %d %q", r.Code, r.Out)
	}
	sameFiles(t, dir1, fromNode2)
	if _, err := os.Stat(filepath.Join(dir1, "asterisk/pjsip.conf")); err == nil {
		t.Error("a file deleted on the new master is still on node1")
	}
	fsSyncOK(t, l, lab.Node2)
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || string(b) != text {
			t.Fatalf("%s in %s: %v (%d bytes, want %d)", name, root, err, len(b), len(text))
		}
	}
}

func setRole(t *testing.T, l *lab.Lab, node, role string, epoch uint64) {
	t.Helper()
	if err := cluster.WriteState(l.StatePath(node), cluster.State{Node: node, Role: role, Epoch: epoch, Since: time.Now().UTC(), Reason: "sync test"}); err != nil {
		t.Fatal(err)
	}
}

func fsSyncOK(t *testing.T, l *lab.Lab, node string) {
	t.Helper()
	r := runIn(t, l, node, "check_pbx_fs_sync", "--config", l.ConfigPath(node), "--role", "any")
	expect(t, r, 0, "PBX_FS_SYNC OK - "+l.SyncDir(node)+": in sync (")
}
