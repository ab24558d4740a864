package lab

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// NagiosGroup is the group Icinga 2 runs the plugins as (Debian's icinga2
// and monitoring-plugins packages create it with the nagios user).
const NagiosGroup = "nagios"

// nagiosSecrets are the secret files cluster.toml references (the daemons'
// own, ami-users and rsyncd.secrets, stay root's).
var nagiosSecrets = []string{"mysql.pw", "mysql-repl.pw", "pgsql.pw", "pgsql-repl.pw", "ami.secret", "rsync.pw"}

// NagiosGID is the nagios group's id, or -1 when there is no such group.
func NagiosGID() int {
	g, err := user.LookupGroup(NagiosGroup)
	if err != nil {
		return -1
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return gid
}

// NagiosReadable lists what the plugins, run as nagios, must read: both
// nodes' cluster.toml and state dir (with the files in it), the secret
// files cluster.toml references and their dir, and the checks' SSH key
// (ssh.check_key_file; the cluster key, which can demote and promote, stays
// root's).
func (l *Lab) NagiosReadable() []string {
	paths := []string{l.secretsDir(), l.CheckKey()}
	for _, name := range nagiosSecrets {
		paths = append(paths, l.secretFile(name))
	}
	for _, n := range Nodes {
		dir := filepath.Dir(l.StatePath(n))
		paths = append(paths, l.ConfigPath(n), dir)
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				if e.Type().IsRegular() {
					paths = append(paths, filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	return paths
}

// shareWithNagios gives NagiosReadable to group nagios as production has
// it (root:nagios, files 0640, directories 0750; nothing for others). With
// no nagios group it changes nothing: the files stay root's alone. A state
// file the handler rewrites later is root:root 0644 (lib/cluster), still
// readable by nagios only through the 0750 root:nagios state dir.
func (l *Lab) shareWithNagios() error {
	gid := NagiosGID()
	if gid < 0 {
		return nil
	}
	var errs []error
	for _, p := range l.NagiosReadable() {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mode := fs.FileMode(0o640)
		if fi.IsDir() {
			mode = 0o750
		}
		if err := os.Chown(p, 0, gid); err != nil {
			errs = append(errs, err)
		} else if err := os.Chmod(p, mode); err != nil {
			errs = append(errs, err)
		}
	}
	// The cluster key can demote and promote: root's alone (a lab made
	// before the checks had their own key gave it to nagios).
	if err := os.Chown(l.st.Creds.SSHKey, 0, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	} else if err := os.Chmod(l.st.Creds.SSHKey, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
