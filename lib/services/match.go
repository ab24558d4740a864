package services

import (
	"path/filepath"
	"sort"
	"strings"
)

// Matches reports whether p is one of s's processes. The name is compared
// with comm and with the base name of argv[0], exactly, because comm is cut
// to 15 bytes by the kernel ("pbx-long-daemon" for "pbx-long-daemon-name")
// while argv[0] is whatever the program was started as (`exec -a`, or a
// daemon renaming itself).
func (s Service) Matches(p Proc) bool {
	if !s.HasMatcher() || !p.Countable() {
		return false
	}
	if s.Process != "" && p.Comm != s.Process && argv0Base(p.Argv) != s.Process {
		return false
	}
	if s.Cmdline != nil && !s.Cmdline.MatchString(strings.Join(p.Argv, " ")) {
		return false
	}
	return true
}

func argv0Base(argv []string) string {
	if len(argv) == 0 || argv[0] == "" {
		return ""
	}
	return filepath.Base(argv[0])
}

// Excluded is the set of processes the check must never count: itself and
// the processes that started it, up to but not including PID 1. A shell
// (`sh -c '... --cmdline x=asterisk'`), sudo or timeout in front of the
// check carries the check's arguments in its own command line, so a
// --cmdline pattern would match it; check_procs leaves its parent out for
// the same reason. PID 1 is never left out: in a container it is often the
// service itself.
func Excluded(procs []Proc, self int) map[int]bool {
	parent := make(map[int]int, len(procs))
	for _, p := range procs {
		parent[p.PID] = p.PPID
	}
	ex := map[int]bool{self: true}
	for pid := parent[self]; pid > 1 && !ex[pid]; pid = parent[pid] {
		ex[pid] = true
	}
	return ex
}

// Match returns the PIDs of s's processes in ascending order, without the
// excluded ones.
func Match(s Service, procs []Proc, excluded map[int]bool) []int {
	var pids []int
	for _, p := range procs {
		if !excluded[p.PID] && s.Matches(p) {
			pids = append(pids, p.PID)
		}
	}
	sort.Ints(pids)
	return pids
}
