package services

import (
	"fmt"
	"regexp"
	"strings"

	"pbxha/lib/config"
	"pbxha/lib/threshold"
)

// DefaultCount is the expected process count when none is given: at least
// one.
const DefaultCount = "1:"

// Service is one required service and how to find it.
type Service struct {
	Name string // label in output and perfdata
	// Unit is the systemd unit ("" when the service has none).
	Unit string
	// Process is an exact process name, compared with /proc/PID/comm and
	// with the base name of argv[0] ("" when not matched by name).
	Process string
	// Cmdline is matched against the command line, its arguments joined
	// by single spaces (nil when not matched by command line). With a
	// Process too, a process must match both.
	Cmdline *regexp.Regexp
	// Count is the expected number of matching processes.
	Count threshold.Range
}

// HasMatcher reports whether the service can be found among processes.
func (s Service) HasMatcher() bool { return s.Process != "" || s.Cmdline != nil }

// describe says how the service is looked for, for -v.
func (s Service) describe() string {
	var parts []string
	if s.Unit != "" {
		parts = append(parts, "unit "+s.Unit)
	}
	if s.Process != "" {
		parts = append(parts, fmt.Sprintf("process name %q", s.Process))
	}
	if s.Cmdline != nil {
		parts = append(parts, fmt.Sprintf("command line =~ %q", s.Cmdline.String()))
	}
	parts = append(parts, "count "+s.Count.String())
	return s.Name + ": " + strings.Join(parts, ", ")
}

// validName is what a service name may be: it becomes a perfdata label,
// part of NAME=VALUE flags and, by default, a unit name, so it keeps to
// systemd's alphabet (no '=', quotes, '|' or spaces).
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@:-]*$`)

// maxName keeps labels readable; systemd's own limit for unit names is 255.
const maxName = 64

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty service name")
	case len(name) > maxName:
		return fmt.Errorf("service name %q is longer than %d characters", name, maxName)
	case !validName.MatchString(name):
		return fmt.Errorf("service name %q: use letters, digits and _ . @ : - (starting with a letter or digit)", name)
	}
	return nil
}

// ParseAssign splits a NAME=VALUE flag argument. The value may itself hold
// '=' (a regular expression often does); the name is checked, the value is
// only required to be non-empty.
func ParseAssign(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%q is not NAME=VALUE", s)
	}
	if err := checkName(name); err != nil {
		return "", "", fmt.Errorf("%q: %w", s, err)
	}
	if value == "" {
		return "", "", fmt.Errorf("%q: empty value after '='", s)
	}
	return name, value, nil
}

// unitSuffixes are systemd's unit types. A unit given without one is a
// service, as systemctl assumes.
var unitSuffixes = []string{
	".service", ".socket", ".target", ".mount", ".automount", ".swap",
	".timer", ".path", ".slice", ".scope", ".device",
}

// validUnit is systemd's unit name alphabet (unit_name_is_valid): systemd
// silently leaves invalid names out of a ListUnitsByNames reply, so they
// are refused here instead.
var validUnit = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+$`)

// NormalizeUnit returns the unit name with ".service" added when it has no
// unit type, or an error when systemd would not accept it.
func NormalizeUnit(u string) (string, error) {
	if !validUnit.MatchString(u) {
		return "", fmt.Errorf("%q is not a systemd unit name", u)
	}
	typed := false
	for _, suf := range unitSuffixes {
		if strings.HasSuffix(u, suf) && len(u) > len(suf) {
			typed = true
			break
		}
	}
	if !typed {
		u += ".service"
	}
	if len(u) > 255 {
		return "", fmt.Errorf("unit name %q is longer than 255 characters", u)
	}
	if strings.HasPrefix(u, ".") || strings.HasPrefix(u, "@") {
		return "", fmt.Errorf("%q is not a systemd unit name", u)
	}
	return u, nil
}

// FlagArgs are the service flags as given, each repeatable.
type FlagArgs struct {
	Service []string // -s NAME
	Process []string // --process NAME=PROCESS
	Unit    []string // --unit NAME=UNIT
	Cmdline []string // --cmdline NAME=REGEX
	Count   []string // --count NAME=RANGE
}

// Empty reports whether no service was declared on the command line.
func (f FlagArgs) Empty() bool {
	return len(f.Service)+len(f.Process)+len(f.Unit)+len(f.Cmdline) == 0
}

// FromFlags builds the services declared on the command line, in the order
// first named. -s NAME, --process, --unit and --cmdline each declare NAME;
// --count only sets the count of a declared one, so a typo in it is an
// error rather than a new service. Errors name the flag.
func FromFlags(f FlagArgs) ([]Service, error) {
	var (
		order []string
		byN   = map[string]*Service{}
	)
	declare := func(name string) *Service {
		if s, ok := byN[name]; ok {
			return s
		}
		// validName is a subset of systemd's alphabet, so this cannot fail.
		unit, _ := NormalizeUnit(name)
		s := &Service{Name: name, Unit: unit, Count: threshold.MustParse(DefaultCount)}
		byN[name] = s
		order = append(order, name)
		return s
	}
	seen := map[string]bool{}
	once := func(flag, name string) error {
		k := flag + "\x00" + name
		if seen[k] {
			return fmt.Errorf("flag %s: service %q given twice", flag, name)
		}
		seen[k] = true
		return nil
	}

	for _, name := range f.Service {
		if strings.Contains(name, "=") {
			return nil, fmt.Errorf("flag --service: %q: -s takes a bare NAME (process NAME, unit NAME.service); use --unit NAME=UNIT or --process NAME=PROCESS to name them apart", name)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("flag --service: %w", err)
		}
		if err := once("--service", name); err != nil {
			return nil, err
		}
		declare(name)
	}
	// -s NAME means "process NAME" unless --process says otherwise, so the
	// defaults are filled in before the overrides.
	for _, name := range f.Service {
		byN[name].Process = name
	}
	for _, a := range f.Process {
		name, v, err := ParseAssign(a)
		if err != nil {
			return nil, fmt.Errorf("flag --process: %w", err)
		}
		if err := once("--process", name); err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "/\x00\n") {
			return nil, fmt.Errorf("flag --process: %q: a process name has no '/' (it is compared with comm and the base name of argv[0]); use --cmdline for paths", a)
		}
		declare(name).Process = v
	}
	for _, a := range f.Unit {
		name, v, err := ParseAssign(a)
		if err != nil {
			return nil, fmt.Errorf("flag --unit: %w", err)
		}
		if err := once("--unit", name); err != nil {
			return nil, err
		}
		u, err := NormalizeUnit(v)
		if err != nil {
			return nil, fmt.Errorf("flag --unit: %w", err)
		}
		declare(name).Unit = u
	}
	for _, a := range f.Cmdline {
		name, v, err := ParseAssign(a)
		if err != nil {
			return nil, fmt.Errorf("flag --cmdline: %w", err)
		}
		if err := once("--cmdline", name); err != nil {
			return nil, err
		}
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("flag --cmdline: %q: %v", a, err)
		}
		declare(name).Cmdline = re
	}
	for _, a := range f.Count {
		name, v, err := ParseAssign(a)
		if err != nil {
			return nil, fmt.Errorf("flag --count: %w", err)
		}
		if err := once("--count", name); err != nil {
			return nil, err
		}
		s, ok := byN[name]
		if !ok {
			return nil, fmt.Errorf("flag --count: %q: no service %q (declare it with -s, --process, --unit or --cmdline)", a, name)
		}
		r, err := threshold.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("flag --count: %q: %v", a, err)
		}
		s.Count = r
	}
	out := make([]Service, 0, len(order))
	for _, n := range order {
		out = append(out, *byN[n])
	}
	return out, nil
}

// FromConfig builds the services of cluster.toml's [[services]]. A unit is
// checked only when `unit` is set: the file says exactly what to look for.
// Errors name the file and key.
func FromConfig(cfg *config.Config) ([]Service, error) {
	var out []Service
	seen := map[string]bool{}
	for i, cs := range cfg.Services {
		key := fmt.Sprintf("%s: services[%d]", cfg.Path(), i)
		if err := checkName(cs.Name); err != nil {
			return nil, fmt.Errorf("%s.name: %w", key, err)
		}
		if seen[cs.Name] {
			return nil, fmt.Errorf("%s.name: %q appears twice", key, cs.Name)
		}
		seen[cs.Name] = true
		s := Service{Name: cs.Name, Process: cs.Process}
		if strings.ContainsAny(cs.Process, "/\x00\n") {
			return nil, fmt.Errorf("%s.process: %q: a process name has no '/'; use cmdline for paths", key, cs.Process)
		}
		if cs.Unit != "" {
			u, err := NormalizeUnit(cs.Unit)
			if err != nil {
				return nil, fmt.Errorf("%s.unit: %w", key, err)
			}
			s.Unit = u
		}
		if cs.Cmdline != "" {
			re, err := regexp.Compile(cs.Cmdline)
			if err != nil {
				return nil, fmt.Errorf("%s.cmdline: %q: %v", key, cs.Cmdline, err)
			}
			s.Cmdline = re
		}
		count := cs.Count
		if count == "" {
			count = DefaultCount
		}
		r, err := threshold.Parse(count)
		if err != nil {
			return nil, fmt.Errorf("%s.count: %v", key, err)
		}
		s.Count = r
		if s.Unit == "" && !s.HasMatcher() {
			return nil, fmt.Errorf("%s: service %q needs unit, process or cmdline", key, cs.Name)
		}
		out = append(out, s)
	}
	return out, nil
}
