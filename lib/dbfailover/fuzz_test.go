package dbfailover

import (
	"strings"
	"testing"
)

// FuzzParseMariaDBGTIDs: no panic; what parses prints back to something
// that parses to the same list, and the errant check of a list against
// itself is empty.
func FuzzParseMariaDBGTIDs(f *testing.F) {
	for _, s := range []string{"", "0-1-42", "0-1-42,1-2-7", " 0-1-1 ", "0-1", "a-b-c", "0-1-42,0-2-1", "0-1-18446744073709551615", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseMariaDBGTIDs(s)
		if err == nil {
			var parts []string
			for _, x := range g {
				parts = append(parts, x.String())
			}
			g2, err := ParseMariaDBGTIDs(strings.Join(parts, ","))
			if err != nil || len(g2) != len(g) {
				t.Fatalf("round trip of %q: %v %v", s, g2, err)
			}
			for i := range g {
				if g[i] != g2[i] {
					t.Fatalf("round trip of %q: %v != %v", s, g, g2)
				}
			}
			if e := MariaDBErrant(g, g); len(e) != 0 {
				t.Fatalf("%q errant against itself: %v", s, e)
			}
		}
		st, err := ParseMariaDBGTIDState(s)
		if err == nil && g != nil {
			_ = MariaDBErrant(g, st)
		}
	})
}
