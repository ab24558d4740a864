package plugin

import (
	"math"
	"strconv"
	"strings"
)

// Perf is one performance data point, printed as
// 'label'=value[UOM];warn;crit;min;max per the monitoring-plugins
// guidelines. Warn and Crit are range texts as the user gave them.
type Perf struct {
	Label    string
	Value    float64
	Unknown  bool // the value could not be determined: printed as U
	UOM      string
	Warn     string
	Crit     string
	Min, Max *float64
}

// F returns a pointer to v, for Perf.Min and Perf.Max.
func F(v float64) *float64 { return &v }

// String formats the point. Labels are quoted when they hold anything but
// letters, digits, '_', '-', '.' and '/'; a quote inside is doubled. Empty
// trailing fields are dropped.
func (p Perf) String() string {
	var b strings.Builder
	b.WriteString(quoteLabel(p.Label))
	b.WriteByte('=')
	if p.Unknown || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		b.WriteString("U")
	} else {
		b.WriteString(FormatNumber(p.Value))
		b.WriteString(p.UOM)
	}
	fields := []string{p.Warn, p.Crit, optNum(p.Min), optNum(p.Max)}
	last := -1
	for i, f := range fields {
		if f != "" {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		b.WriteByte(';')
		b.WriteString(fields[i])
	}
	return b.String()
}

// FormatNumber prints a number in the guidelines' class [-0-9.]: no
// exponent, at most six decimals, no trailing zeros.
func FormatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e18 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

func optNum(p *float64) string {
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return ""
	}
	return FormatNumber(*p)
}

func quoteLabel(l string) string {
	plain := l != ""
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '/') {
			plain = false
			break
		}
	}
	if plain {
		return l
	}
	return "'" + strings.ReplaceAll(l, "'", "''") + "'"
}
