package integration

// Every plugin runs as the unprivileged nagios user, as Icinga runs it: the
// lab gives group nagios what production gives it (cluster.toml, the secret
// files it names, the cluster key, the state dir), the ICMP/ARP plugins get
// cap_net_raw as `make install` and the .deb's postinst give it, and each
// plugin then says as nagios what it says as root. Without the capability
// an ICMP/ARP plugin says so, naming CAP_NET_RAW.

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
	"pbxha/testharness/labtest"
)

// asNagios is the prefix that drops to the nagios user inside a namespace
// (`ip netns exec` itself needs root), as Icinga 2 runs its checks.
var asNagios = []string{"setpriv", "--reuid=nagios", "--regid=nagios", "--init-groups", "--"}

// netrawPlugins reads the Makefile's NETRAW list (what `make install` and
// the .deb's postinst setcap).
func netrawPlugins(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if name, list, ok := strings.Cut(line, ":="); ok && strings.TrimSpace(name) == "NETRAW" {
			if f := strings.Fields(list); len(f) > 0 {
				return f
			}
		}
	}
	t.Fatal("no NETRAW list in the Makefile")
	return nil
}

// runAs runs argv in host's namespace, as root or (nagios) the nagios user,
// with Icinga's sparse environment, from /.
func runAs(t *testing.T, l *lab.Lab, host string, nagios bool, argv ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if nagios {
		argv = append(slices.Clone(asNagios), argv...)
	}
	cmd := l.Command(ctx, host, argv...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	r := labtest.Collect(cmd)
	if r.Err != nil {
		t.Fatalf("running %v in %s: %v", argv, host, r.Err)
	}
	return r
}

// stateWord is the state in a plugin's first line ("PBX_X OK - ...").
func stateWord(first string) string {
	f := strings.Fields(first)
	if len(f) < 2 {
		return first
	}
	return f[1]
}

// deniedText finds a permission error in a run's output.
func deniedText(r Run) string {
	s := strings.ToLower(r.Out + r.Stderr)
	for _, w := range []string{"permission denied", "operation not permitted"} {
		if strings.Contains(s, w) {
			return w
		}
	}
	return ""
}

func copyExec(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNagiosRunsEveryPlugin(t *testing.T) {
	l := useLab(t)
	u, err := user.Lookup("nagios")
	if err != nil || lab.NagiosGID() < 0 {
		noLab(t, "no nagios user and group (scripts/deps installs icinga2 and monitoring-plugins): "+errString(err))
	}
	gid := lab.NagiosGID()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Reset gives the modes as up does (and so to a lab up before them).
	if err := l.Reset(ctx); err != nil {
		t.Fatalf("reset: %v", err)
	}

	t.Run("lab files", func(t *testing.T) {
		for _, p := range l.NagiosReadable() {
			fi, err := os.Stat(p)
			if err != nil {
				t.Error(err)
				continue
			}
			st := fi.Sys().(*syscall.Stat_t)
			want := fs.FileMode(0o640)
			if fi.IsDir() {
				want = 0o750
			}
			if st.Uid != 0 || int(st.Gid) != gid || fi.Mode().Perm() != want {
				t.Errorf("%s: %d:%d %v, want root:nagios %v", p, st.Uid, st.Gid, fi.Mode().Perm(), want)
			}
			if r := runAs(t, l, lab.Node1, true, "test", "-r", p); r.Code != 0 {
				t.Errorf("nagios cannot read %s", p)
			}
			if fi.Mode().IsRegular() {
				if r := runAs(t, l, lab.Node1, true, "sh", "-c", `: >> "$1"`, "sh", p); r.Code == 0 {
					t.Errorf("nagios can write %s", p)
				}
			}
		}
		// The cluster key (it can demote and promote) stays root's: nagios
		// reads the checks' key, which the peers pin to pbxha-peer
		// --read-only.
		if r := runAs(t, l, lab.Node1, true, "test", "-r", l.Creds().SSHKey); r.Code == 0 {
			t.Errorf("nagios can read the cluster key %s", l.Creds().SSHKey)
		}
		// The daemons' own secrets stay root's.
		for _, name := range []string{"ami-users", "rsyncd.secrets"} {
			p := filepath.Join(l.RootDir(), "secrets", name)
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Gid != 0 {
				t.Errorf("%s: %v %v, want root:root 0600", p, fi.Mode(), err)
			}
		}
		// The handler rewrites the state file root:root 0644 (lib/cluster):
		// nagios still reads it through the state dir, others do not.
		if err := l.SetRole(lab.Node2, cluster.Slave, 1, "test: rewritten as the handler does"); err != nil {
			t.Fatal(err)
		}
		sp := l.StatePath(lab.Node2)
		if r := runAs(t, l, lab.Node2, true, "cat", sp); r.Code != 0 || !strings.Contains(r.Out, `"slave"`) {
			t.Errorf("nagios cannot read the rewritten state file: exit %d %s", r.Code, r.Stderr)
		}
		nobody := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}
		for _, p := range []string{sp, l.ConfigPath(lab.Node2), filepath.Join(l.RootDir(), "secrets", "mysql.pw")} {
			if r := runAs(t, l, lab.Node2, false, append(nobody, "cat", p)...); r.Code == 0 {
				t.Errorf("user nobody can read %s", p)
			}
		}
	})

	// The plugins, copied where nagios may run them; NETRAW copies with
	// cap_net_raw as `make install` gives it, and once more without.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nocap := filepath.Join(dir, "nocap")
	if err := os.Mkdir(nocap, 0o755); err != nil {
		t.Fatal(err)
	}
	srcs, err := filepath.Glob(filepath.Join(filepath.Dir(bin(t, "pbxha-peer")), "check_pbx_*"))
	if err != nil || len(srcs) < 13 {
		t.Fatalf("plugins: %v %v", srcs, err)
	}
	netraw := netrawPlugins(t)
	var plugins []string
	for _, src := range srcs {
		name := filepath.Base(src)
		p := filepath.Join(dir, name)
		copyExec(t, src, p)
		plugins = append(plugins, p)
		if slices.Contains(netraw, name) {
			copyExec(t, src, filepath.Join(nocap, name))
			if out, err := exec.Command("setcap", "cap_net_raw+ep", p).CombinedOutput(); err != nil {
				t.Fatalf("setcap %s: %v: %s", p, err, out)
			}
		}
	}
	// Exactly the NETRAW copies hold a capability, and only cap_net_raw.
	out, err := exec.Command("getcap", "-r", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("getcap: %v: %s", err, out)
	}
	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			got = append(got, line)
		}
	}
	var want []string
	for _, n := range netraw {
		want = append(want, filepath.Join(dir, n)+" cap_net_raw=ep")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("getcap -r %s:\n%s\nwant:\n%s", dir, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The wrapper really drops root: uid nagios, no capability.
	if r := runAs(t, l, lab.Node1, true, "sh", "-c", "id -u; grep CapEff /proc/self/status"); !strings.HasPrefix(r.Out, u.Uid+"\n") || !strings.Contains(r.Out, "CapEff:\t0000000000000000") {
		t.Fatalf("setpriv did not drop root (want uid %s, no capability): %q", u.Uid, r.Out)
	}

	t.Run("same result as root", func(t *testing.T) {
		runs, ok := 0, 0
		for _, node := range lab.Nodes {
			for _, p := range plugins {
				name := filepath.Base(p)
				variants := [][]string{{}}
				if strings.Contains(name, "_db_") {
					variants = [][]string{{"--driver", "mysql"}, {"--driver", "pgsql"}}
				}
				for _, v := range variants {
					// As Icinga runs it (the role from the state file), and
					// with --role any so the role-bound probes run too.
					for _, role := range [][]string{{}, {"--role", "any"}} {
						argv := append(append([]string{p, "--config", l.ConfigPath(node), "-t", "8"}, v...), role...)
						what := node + ": " + name + " " + strings.Join(append(slices.Clone(v), role...), " ")
						var root, nag Run
						// A lab service may change between the two runs:
						// a difference must hold on a second try.
						for try := 0; try < 2; try++ {
							root = runAs(t, l, node, false, argv...)
							nag = runAs(t, l, node, true, argv...)
							if root.Code == nag.Code && stateWord(root.First) == stateWord(nag.First) {
								break
							}
						}
						runs++
						t.Logf("%s: root %d %q, nagios %d %q", what, root.Code, trunc(root.First, 90), nag.Code, trunc(nag.First, 90))
						if root.Code != nag.Code || stateWord(root.First) != stateWord(nag.First) {
							t.Errorf("%s: as root exit %d %q, as nagios exit %d %q\n%s%s", what, root.Code, root.First, nag.Code, nag.First, nag.Out, nag.Stderr)
						}
						if w := deniedText(nag); w != "" {
							t.Errorf("%s as nagios says %q:\n%s%s", what, w, nag.Out, nag.Stderr)
						}
						if nag.Stderr != "" {
							t.Errorf("%s as nagios wrote to stderr: %q", what, nag.Stderr)
						}
						if nag.Code == 0 && !strings.Contains(nag.First, "skipped") {
							ok++
						}
					}
				}
			}
		}
		// Most checks pass in the healthy lab: the comparison was not of
		// two identical failures.
		if ok < runs/2 {
			t.Errorf("only %d of %d runs as nagios were OK and not skipped", ok, runs)
		}
		t.Logf("%d plugin runs compared, root against nagios; %d OK and not skipped", runs, ok)
	})

	// Without the capability each says so in its first line, at once, and
	// is UNKNOWN: all three are failover class, and a missing capability
	// must not start a failover (CRITICAL) nor pass (OK).
	t.Run("without cap_net_raw", func(t *testing.T) {
		for _, name := range netraw {
			node := lab.Node2 // the slave's checks
			if name == "check_pbx_cluster" {
				node = lab.Node1 // the master's
			}
			argv := []string{filepath.Join(nocap, name), "--config", l.ConfigPath(node), "-t", "8"}
			t0 := time.Now()
			r := runAs(t, l, node, true, argv...)
			took := time.Since(t0)
			t.Logf("%s on %s without cap_net_raw: exit %d in %.2fs: %s", name, node, r.Code, took.Seconds(), r.Out)
			if r.Code != 3 || !strings.Contains(r.First, "CAP_NET_RAW") {
				t.Errorf("%s on %s without cap_net_raw as nagios: exit %d, want UNKNOWN naming CAP_NET_RAW in the first line:\n%s%s", name, node, r.Code, r.Out, r.Stderr)
			}
			if took > 5*time.Second {
				t.Errorf("%s took %v to say it lacks CAP_NET_RAW", name, took)
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
