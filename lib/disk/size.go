package disk

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Size is a byte count given on the command line ("2GiB", "500MB"). It is
// a pflag.Value, so a bad size is refused while flags are parsed and the
// message names the flag.
type Size struct {
	Bytes uint64
	set   bool
	text  string
}

// IsSet reports whether the size was given.
func (s Size) IsSet() bool { return s.set }

// units: binary prefixes are powers of 1024, SI ones powers of 1000, as
// IEC 80000-13 has it. A bare "G" or "k" is refused: whether it means 10^9
// or 2^30 depends on who wrote it, and a threshold off by 7% is a bug.
var units = map[string]float64{
	"":    1,
	"b":   1,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"pb":  1e15,
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

// ParseSize reads a size: a decimal number and an optional unit (B, KiB,
// MiB, GiB, TiB, PiB; KB, MB, GB, TB, PB; any case). Fractions are rounded
// to whole bytes.
func ParseSize(s string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (a number and a unit: B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000)", s)
	}
	mult, ok := units[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000)", s, m[2])
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %v", s, err)
	}
	b := math.Round(v * mult)
	// 2^63 keeps the value exact in the int64 and float64 arithmetic
	// downstream; no filesystem is that big.
	if b >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return uint64(b), nil
}

// Set parses the flag's value.
func (s *Size) Set(v string) error {
	b, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size{Bytes: b, set: true, text: v}
	return nil
}

// String is the size as given, "" when unset.
func (s *Size) String() string { return s.text }

// Type names the value in --help.
func (s *Size) Type() string { return "size" }

// FormatBytes prints a byte count for people: "23.1 GiB", "512 B".
func FormatBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatUint(b, 10) + " B"
	}
	v := float64(b)
	i := -1
	// 1023.97 KiB would print as "1024 KiB"; it is "1 MiB".
	for v >= unit-0.05 && i < 4 {
		v /= unit
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}
