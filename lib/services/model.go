package services

import (
	"fmt"
	"regexp"
	"strings"

	"pbxha/lib/threshold"
)

// Service is one required service and how to find it.
type Service struct {
	Name    string
	Unit    string         // systemd unit
	Process string         // exact process name: comm or argv[0]'s base name
	Cmdline *regexp.Regexp // over the NUL-separated argv joined by spaces
	Count   threshold.Range
}

// Proc is what the matcher needs of one process.
type Proc struct {
	PID   int
	Comm  string
	Argv  []string
	State string // from stat: R, S, D, Z, ...
}

// Matches reports whether p is an instance of s.
func (s Service) Matches(p Proc) bool {
	if p.State == "Z" || len(p.Argv) == 0 { // zombies; kernel threads
		return false
	}
	if s.Process != "" {
		if p.Comm == s.Process || baseName(p.Argv[0]) == s.Process {
			return true
		}
		// comm is cut at 15 bytes by the kernel; argv[0] may be rewritten
		// (setproctitle). A long name matching comm's prefix counts.
		if len(s.Process) > 15 && len(p.Comm) == 15 && strings.HasPrefix(s.Process, p.Comm) && strings.Contains(p.Argv[0], s.Process) {
			return true
		}
	}
	if s.Cmdline != nil && s.Cmdline.MatchString(strings.Join(p.Argv, " ")) {
		return true
	}
	return false
}

func baseName(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ParseAssignment reads NAME=VALUE (the syntax of --cmdline and --count).
func ParseAssignment(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", "", fmt.Errorf("%q is not NAME=VALUE", s)
	}
	if value == "" {
		return "", "", fmt.Errorf("%q has an empty value", s)
	}
	return name, value, nil
}
