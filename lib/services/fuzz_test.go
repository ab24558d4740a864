package services

import (
	"strings"
	"testing"
)

// FuzzParseAssign: NAME=VALUE either fails or splits at the first '=' into
// a name fit for a label and a unit, and a non-empty value.
func FuzzParseAssign(f *testing.F) {
	for _, s := range []string{"asterisk=1:", "kam=^/usr/sbin/kamailio -f (a|b)=c", "=", "a=", "=b", "a b=c", "a\x00=b", "é=1", "getty@tty1=@1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, value, err := ParseAssign(s)
		if err != nil {
			return
		}
		if name+"="+value != s || strings.Contains(name, "=") || value == "" {
			t.Fatalf("ParseAssign(%q) = %q, %q", s, name, value)
		}
		if checkName(name) != nil {
			t.Fatalf("ParseAssign(%q) accepted name %q", s, name)
		}
		if u, err := NormalizeUnit(name); err != nil || !validUnit.MatchString(u) {
			t.Fatalf("name %q does not make a unit: %q, %v", name, u, err)
		}
	})
}

// FuzzFromFlags: whatever the arguments, FromFlags returns an error naming
// a flag or services that are complete: a valid name, a unit, a count, and
// something to look for or a unit to ask about.
func FuzzFromFlags(f *testing.F) {
	f.Add("asterisk", "mariadb=mariadbd", "mariadb=mariadb", "kam=kamailio -f", "kam=2:")
	f.Add("a=b", "", "", "x=(", "a=one")
	f.Add("", "", "rtp=rtpengine@1", "", "rtp=@0:0")
	f.Fuzz(func(t *testing.T, service, process, unit, cmdline, count string) {
		var a FlagArgs
		for _, p := range []struct {
			s   string
			dst *[]string
		}{{service, &a.Service}, {process, &a.Process}, {unit, &a.Unit}, {cmdline, &a.Cmdline}, {count, &a.Count}} {
			if p.s != "" {
				*p.dst = strings.Split(p.s, "\n")
			}
		}
		svcs, err := FromFlags(a)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "flag --") {
				t.Fatalf("error does not name a flag: %v", err)
			}
			return
		}
		for _, s := range svcs {
			if checkName(s.Name) != nil || !s.Count.IsSet() || s.Unit == "" {
				t.Fatalf("incomplete service %+v from %+v", s, a)
			}
			if _, err := NormalizeUnit(s.Unit); err != nil {
				t.Fatalf("bad unit %q: %v", s.Unit, err)
			}
		}
	})
}
