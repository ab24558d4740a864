package disk

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// DefaultMountinfo is where this process's mounts are listed.
const DefaultMountinfo = "/proc/self/mountinfo"

// PseudoTypes are the filesystem types left out of the default mount set:
// kernel interfaces with no space to run out of, memory-backed tmpfs and
// ramfs (their use is the RAM's, watched elsewhere), and read-only images
// (squashfs snaps, CD images) that are full by construction. overlay stays
// in: in a container it is the root filesystem.
var PseudoTypes = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs",
	"debugfs", "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse",
	"fuse.lxcfs", "fuse.portal", "fuse.snapfuse", "fusectl", "hugetlbfs",
	"iso9660", "mqueue", "nfsd", "nsfs", "proc", "pstore", "ramfs",
	"rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
	"tracefs",
}

// SkipTypes is PseudoTypes with include taken out and exclude added: the
// types the default mount set leaves out.
func SkipTypes(include, exclude []string) map[string]bool {
	skip := map[string]bool{}
	for _, t := range PseudoTypes {
		skip[t] = true
	}
	for _, t := range exclude {
		skip[t] = true
	}
	for _, t := range include {
		delete(skip, t)
	}
	return skip
}

// Mount is one filesystem to check.
type Mount struct {
	Path   string // the mount point, or the path as given with -p
	Device string // major:minor from mountinfo; "" for a path given with -p
	FSType string // "" for a path given with -p
}

// ReadMountinfo reads a mountinfo file with procfs, which reads it only
// inside a proc tree: path must be DIR/self/mountinfo or DIR/PID/mountinfo
// (/proc/1/mountinfo lists the host's mounts from inside a container that
// shares its PID namespace).
func ReadMountinfo(path string) ([]*procfs.MountInfo, error) {
	dir, file := filepath.Split(filepath.Clean(path))
	root, proc := filepath.Split(filepath.Clean(dir))
	if file != "mountinfo" || root == "" {
		return nil, fmt.Errorf("%s is not a mountinfo file in a proc tree (DIR/self/mountinfo or DIR/PID/mountinfo)", path)
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var mounts []*procfs.MountInfo
	if proc == "self" {
		mounts, err = fs.GetMounts()
	} else if pid, perr := strconv.Atoi(proc); perr == nil && pid > 0 {
		mounts, err = fs.GetProcMounts(pid)
	} else {
		return nil, fmt.Errorf("%s is not a mountinfo file in a proc tree (DIR/self/mountinfo or DIR/PID/mountinfo)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return mounts, nil
}

// Select picks the mounts to check from mountinfo: types in skip are left
// out; a mount point that is mounted over later in the list is left out
// (statfs would see the upper one); of several mounts of one device (bind
// mounts) only the first is kept. skipped says why each other one was left
// out, for -v.
func Select(mounts []*procfs.MountInfo, skip map[string]bool) (sel []Mount, skipped []string) {
	last := map[string]int{}
	for i, m := range mounts {
		last[Unescape(m.MountPoint)] = i
	}
	seen := map[string]string{}
	for i, m := range mounts {
		path := Unescape(m.MountPoint)
		switch first, dup := seen[m.MajorMinorVer]; {
		case last[path] != i:
			skipped = append(skipped, fmt.Sprintf("%s (%s): mounted over later", path, m.FSType))
		case skip[m.FSType]:
			skipped = append(skipped, fmt.Sprintf("%s (%s): type not checked", path, m.FSType))
		case dup:
			skipped = append(skipped, fmt.Sprintf("%s (%s): device %s already checked as %s", path, m.FSType, m.MajorMinorVer, first))
		default:
			seen[m.MajorMinorVer] = path
			sel = append(sel, Mount{Path: path, Device: m.MajorMinorVer, FSType: m.FSType})
		}
	}
	return sel, skipped
}

// Unescape undoes the kernel's octal escapes in mountinfo paths: space,
// tab, newline and backslash are written as \040, \011, \012 and \134
// (fs/proc_namespace.c, mangle()). procfs hands the paths over escaped.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			if s[i+1] <= '3' { // \400 and up are not a byte
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
