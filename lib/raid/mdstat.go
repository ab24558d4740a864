package raid

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// MDArray is one Linux md array of /proc/mdstat, plus what sysfs adds.
type MDArray struct {
	Name  string // "md0"
	Level string // raid1, raid5, raid0, linear ...; "" when mdstat names none (containers, inactive arrays)
	// State is the device line's word: active, inactive or broken (a raid0
	// or linear array that lost a member, kernel 5.x and later).
	State     string
	ReadOnly  string // "read-only", "auto-read-only" or ""
	Container string // metadata of an external-metadata container (imsm, ddf): it groups disks and holds no data itself
	Total     int    // devices the array needs, the n of [n/m]; 0 when mdstat prints no [n/m] (raid0, linear, inactive)
	Active    int    // devices working, the m of [n/m]
	Down      int    // '_' in the member status
	Status    string // member status as printed, "UU_U"; "" when none is printed
	Members   []MDMember
	Sync      MDSync

	// From /sys/block/<name>/md, when readable.
	SysAction   string // sync_action: idle, resync, recover, check, repair, reshape, frozen; "" unknown
	SysDegraded int    // degraded: number of missing devices; -1 unknown
	Mismatch    int64  // mismatch_cnt; -1 unknown
}

// MDMember is one component device with its mdstat flags.
type MDMember struct {
	Name        string // "sda1"
	Index       int    // the [n]: its slot in the superblock
	Faulty      bool   // (F)
	Spare       bool   // (S)
	Replacement bool   // (R)
	WriteMostly bool   // (W)
	Journal     bool   // (J)
}

// MDSync is the array's sync line.
type MDSync struct {
	Action  string  // resync, recovery, check or reshape as mdstat prints it; "" for none
	Percent float64 // progress, -1 when not printed
	// Delayed is "resync=DELAYED": the kernel runs one sync at a time on
	// arrays that share disks and prints this for every kind of waiting
	// sync, so only sysfs sync_action says which one it is.
	Delayed bool
	// Pending is "resync=PENDING": a read-only array needs a resync that
	// starts at its first write.
	Pending bool
}

// Degraded is the number of devices the array misses: the larger of what
// mdstat and sysfs say.
func (a MDArray) Degraded() int {
	return max(a.Down, a.Total-a.Active, a.SysDegraded)
}

// Failed lists the members marked (F).
func (a MDArray) Failed() []string {
	var out []string
	for _, m := range a.Members {
		if m.Faulty {
			out = append(out, m.Name)
		}
	}
	return out
}

// Spares counts the members marked (S) and not (F).
func (a MDArray) Spares() int {
	n := 0
	for _, m := range a.Members {
		if m.Spare && !m.Faulty {
			n++
		}
	}
	return n
}

var (
	mdName     = regexp.MustCompile(`^md[A-Za-z0-9_]{1,32}$`)
	mdStatusRE = regexp.MustCompile(`\[[0-9]+/[0-9]+\] \[([U_]+)\]`)
	// "external:imsm" is a container; "external:/md127/0" (and
	// "-md127/0", container read-only) is a volume inside one
	mdContainerRE  = regexp.MustCompile(`super external:([A-Za-z][A-Za-z0-9_.-]*)(?:\s|$)`)
	personalityTag = regexp.MustCompile(`^\[[A-Za-z0-9_]+\]$`)
)

// ParseMDStat reads /proc/mdstat text. The counts, members, levels and sync
// progress come from prometheus/procfs; what its model lacks is read here:
// the member status string ("U_U"), resync=DELAYED and resync=PENDING (procfs
// calls both "resyncing"), containers of external metadata (IMSM, DDF) and
// the read-only flags.
func ParseMDStat(data []byte) ([]MDArray, error) {
	data = dropComments(data)
	if err := checkPersonalities(data); err != nil {
		return nil, err
	}
	stats, err := procfsMDStat(data)
	if err != nil {
		return nil, err
	}
	extras := scanMDStat(data)
	arrays := make([]MDArray, 0, len(stats))
	for _, s := range stats {
		if !mdName.MatchString(s.Name) {
			return nil, fmt.Errorf("parsing mdstat: %q is not an md device name", s.Name)
		}
		x := extras[s.Name]
		a := MDArray{
			Name: s.Name, Level: s.Type, State: x.state, ReadOnly: x.readOnly, Container: x.container,
			Total: int(s.DisksTotal), Active: int(s.DisksActive), Down: int(s.DisksDown), Status: x.status,
			Sync:        MDSync{Percent: -1, Delayed: x.delayed, Pending: x.pending},
			SysDegraded: -1, Mismatch: -1,
		}
		if a.Level == "unknown" {
			a.Level = ""
		}
		if a.Level == "raid0" || a.Level == "linear" {
			// procfs counts members as both total and active: there is no [n/m]
			a.Total, a.Active = 0, 0
		}
		if !x.delayed && !x.pending {
			switch s.ActivityState {
			case "recovering":
				a.Sync.Action = "recovery"
			case "reshaping":
				a.Sync.Action = "reshape"
			case "checking":
				a.Sync.Action = "check"
			case "resyncing":
				a.Sync.Action = "resync"
			}
			if a.Sync.Action != "" {
				a.Sync.Percent = s.BlocksSyncedPct
			}
		}
		for _, d := range s.Devices {
			a.Members = append(a.Members, MDMember{
				Name: d.Name, Index: int(d.DescriptorIndex), Faulty: d.Faulty, Spare: d.Spare,
				Replacement: d.Replacement, WriteMostly: d.WriteMostly, Journal: d.Journal,
			})
		}
		arrays = append(arrays, a)
	}
	return arrays, nil
}

// dropComments removes "# cat /proc/mdstat" lines that captured files
// carry; the kernel never prints a '#'.
func dropComments(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	return []byte(b.String())
}

// checkPersonalities refuses a Personalities line procfs would panic on
// (it slices every word as "[name]").
func checkPersonalities(data []byte) error {
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "Personalities : ")
		if !ok {
			continue
		}
		for _, w := range strings.Fields(rest) {
			if !personalityTag.MatchString(w) {
				return fmt.Errorf("parsing mdstat: personality %q is not [name]", w)
			}
		}
		return nil // procfs reads only the first such line
	}
	return nil
}

// procfsPanicked marks the error of a recovered panic in procfs.
const procfsPanicked = "procfs panicked"

// procfsMDStat runs procfs's mdstat parser. procfs parses mdstat only from
// a proc mount (its byte parser is unexported), so the text goes through a
// private temporary directory.
func procfsMDStat(data []byte) (stats []procfs.MDStat, err error) {
	dir, err := os.MkdirTemp("", "pbxha-mdstat-")
	if err != nil {
		return nil, fmt.Errorf("parsing mdstat: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "mdstat"), data, 0o600); err != nil {
		return nil, fmt.Errorf("parsing mdstat: %w", err)
	}
	pfs, err := procfs.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("parsing mdstat: %w", err)
	}
	defer func() {
		// procfs is third-party code fed with text from a file: a panic
		// there is a parse error of that file, not a crash of the check.
		if p := recover(); p != nil {
			stats, err = nil, fmt.Errorf("parsing mdstat: %s: %v", procfsPanicked, p)
		}
	}()
	stats, err = pfs.MDStat()
	if err != nil {
		return nil, errors.New("parsing mdstat: " + strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	return stats, nil
}

// mdExtra is what ParseMDStat reads itself, per array.
type mdExtra struct {
	state, readOnly, container, status string
	delayed, pending                   bool
}

// scanMDStat reads the parts of each array's lines that procfs drops.
// Device lines are recognised the way procfs does: a line that does not
// start with a space and is neither Personalities nor "unused devices".
func scanMDStat(data []byte) map[string]mdExtra {
	out := map[string]mdExtra{}
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur = ""
			f := strings.Fields(line)
			if len(f) < 3 || f[1] != ":" {
				continue
			}
			cur = f[0]
			x := mdExtra{state: f[2]}
			switch {
			case strings.Contains(line, "(auto-read-only)"):
				x.readOnly = "auto-read-only"
			case strings.Contains(line, "(read-only)"):
				x.readOnly = "read-only"
			}
			out[cur] = x
			continue
		}
		if cur == "" {
			continue
		}
		x := out[cur]
		if m := mdStatusRE.FindStringSubmatch(line); m != nil && x.status == "" {
			x.status = m[1]
		}
		if m := mdContainerRE.FindStringSubmatch(line); m != nil {
			x.container = m[1]
		}
		x.delayed = x.delayed || strings.Contains(line, "resync=DELAYED")
		x.pending = x.pending || strings.Contains(line, "resync=PENDING")
		out[cur] = x
	}
	return out
}

// ReadMDSysfs fills the sysfs fields of each array from
// <root>/block/<name>/md. Missing files leave them unknown: sysfs only
// refines what mdstat says.
func ReadMDSysfs(root string, arrays []MDArray) {
	for i := range arrays {
		dir := filepath.Join(root, "block", arrays[i].Name, "md")
		if v, err := readSysfs(dir, "sync_action"); err == nil {
			arrays[i].SysAction = v
		}
		if v, err := readSysfs(dir, "degraded"); err == nil {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				arrays[i].SysDegraded = n
			}
		}
		if v, err := readSysfs(dir, "mismatch_cnt"); err == nil {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				arrays[i].Mismatch = n
			}
		}
	}
}

func readSysfs(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if len(b) > 64 {
		return "", fs.ErrInvalid
	}
	return strings.TrimSpace(string(b)), nil
}
