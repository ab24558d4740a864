package sip

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Codes is the list of final response codes that count as a healthy answer
// (--accept). It is a flag value, so a bad list is refused while flags are
// parsed, naming the flag.
type Codes []int

// DefaultAccept is what a SIP stack that is up answers OPTIONS with.
var DefaultAccept = Codes{200}

// ParseCodes reads "200,401,404": final response codes (200-699; a 1xx is
// provisional and never ends a transaction), separated by commas, spaces
// allowed around them. The result is sorted, without duplicates.
func ParseCodes(s string) (Codes, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty list of response codes")
	}
	var out Codes
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("%q has an empty item", s)
		}
		if len(f) != 3 || strings.Trim(f, "0123456789") != "" {
			return nil, fmt.Errorf("%q is not a SIP response code (three digits, e.g. 200)", f)
		}
		n, _ := strconv.Atoi(f)
		if n < 200 || n > 699 {
			return nil, fmt.Errorf("%d is not a final response code (200-699)", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Contains reports whether code is in the list.
func (c Codes) Contains(code int) bool { return slices.Contains(c, code) }

// String is the list as --accept takes it.
func (c Codes) String() string {
	parts := make([]string, len(c))
	for i, n := range c {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// Set implements pflag.Value.
func (c *Codes) Set(s string) error {
	p, err := ParseCodes(s)
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// Type names the value in --help.
func (c *Codes) Type() string { return "codes" }
