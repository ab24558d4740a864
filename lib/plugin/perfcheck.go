package plugin

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// The expressions are compiled on first use, not at start-up: every plugin
// binary links this package, and only tests call SplitPerfdata.
var perfRes = sync.OnceValues(func() (*regexp.Regexp, *regexp.Regexp) {
	return regexp.MustCompile(`^(U|-?[0-9]+(\.[0-9]+)?)(s|ms|us|%|B|KB|MB|GB|TB|c)?$`),
		regexp.MustCompile(`^(-?[0-9]+(\.[0-9]+)?)?$`)
})

var perfRange = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(@?(~|-?[0-9]+(\.[0-9]+)?)?(:(-?[0-9]+(\.[0-9]+)?)?)?)$`)
})

// SplitPerfdata splits perfdata text into its items, honouring quoted
// labels, and checks each against the monitoring-plugins guidelines: label,
// value in [-0-9.] or U, a known UOM, ranges for warn and crit, numbers for
// min and max, at most five fields. Tests across the repository use it to
// prove their perfdata is valid.
func SplitPerfdata(s string) ([]string, error) {
	var items []string
	perfValue, perfNum := perfRes()
	s = strings.TrimSpace(s)
	for s != "" {
		var label string
		if s[0] == '\'' {
			i := 1
			for {
				j := strings.IndexByte(s[i:], '\'')
				if j < 0 {
					return items, fmt.Errorf("unterminated quoted label in %q", s)
				}
				i += j + 1
				if i < len(s) && s[i] == '\'' { // '' is an escaped quote
					i++
					continue
				}
				break
			}
			label = s[:i]
			s = s[i:]
		} else {
			i := strings.IndexByte(s, '=')
			if i <= 0 {
				return items, fmt.Errorf("no label=value in %q", s)
			}
			label = s[:i]
			if strings.ContainsAny(label, " '") {
				return items, fmt.Errorf("label %q needs quotes", label)
			}
			s = s[i:]
		}
		if !strings.HasPrefix(s, "=") {
			return items, fmt.Errorf("label %s is not followed by '='", label)
		}
		rest, tail, _ := strings.Cut(s[1:], " ")
		fields := strings.Split(rest, ";")
		if len(fields) > 5 {
			return items, fmt.Errorf("%s has %d fields, at most 5", label, len(fields))
		}
		if !perfValue.MatchString(fields[0]) {
			return items, fmt.Errorf("%s: value %q is not [-0-9.] or U with a known UOM", label, fields[0])
		}
		for i, f := range fields[1:] {
			re := perfRange()
			if i >= 2 {
				re = perfNum
			}
			if !re.MatchString(f) {
				return items, fmt.Errorf("%s: field %d %q is malformed", label, i+2, f)
			}
		}
		items = append(items, label+"="+rest)
		s = strings.TrimLeft(tail, " ")
	}
	return items, nil
}
