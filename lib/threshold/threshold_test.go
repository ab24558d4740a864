package threshold

import (
	"math"
	"strings"
	"testing"

	"pbxha/lib/plugin"
)

// The monitoring-plugins guidelines' table, plus the edges around each end.
func TestAlert(t *testing.T) {
	cases := []struct {
		rng    string
		ok     []float64
		alerts []float64
	}{
		{"10", []float64{0, 5, 10}, []float64{-0.001, 10.001, 11, -1}},
		{"10:", []float64{10, 11, 1e9}, []float64{9.999, 0, -5}},
		{"~:10", []float64{-1e9, 0, 10}, []float64{10.001, 100}},
		{"10:20", []float64{10, 15, 20}, []float64{9.99, 20.01}},
		{"@10:20", []float64{9.99, 20.01, 0}, []float64{10, 15, 20}},
		{"@~:3", []float64{3.0001, 10}, []float64{3, 0, -100}},
		{"@5", []float64{-1, 5.5}, []float64{0, 5}},
		{"-5:-1", []float64{-5, -1, -3}, []float64{0, -6}},
		{"0.5", []float64{0, 0.5}, []float64{0.50001, -0.1}},
		{"~:", []float64{-1e300, 0, 1e300}, nil},
		{":10", []float64{0, 10}, []float64{-1, 11}},
		{"-.5:.5", []float64{-0.5, 0.5}, []float64{-0.6, 0.6}},
	}
	for _, tc := range cases {
		r, err := Parse(tc.rng)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.rng, err)
		}
		for _, v := range tc.ok {
			if r.Alert(v) {
				t.Errorf("%q alerts on %v, should not", tc.rng, v)
			}
		}
		for _, v := range tc.alerts {
			if !r.Alert(v) {
				t.Errorf("%q does not alert on %v, should", tc.rng, v)
			}
		}
		if !r.Alert(math.NaN()) {
			t.Errorf("%q does not alert on NaN", tc.rng)
		}
		if r.String() != tc.rng {
			t.Errorf("String() = %q, want %q", r.String(), tc.rng)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", " ", "abc", "10:5", "@", "1e3", "NaN", "inf", "0x10", "10::20", "~", "@~", "10 ", "5:~", "1,5", "--1", "1.2.3"} {
		if r, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, r)
		}
	}
	_, err := Parse("20:10")
	if err == nil || !strings.Contains(err.Error(), "start 20 is greater than end 10") {
		t.Errorf("message for 20:10: %v", err)
	}
}

func TestUnsetNeverAlerts(t *testing.T) {
	var r Range
	if r.IsSet() || r.Alert(1e9) || r.Alert(math.NaN()) || r.String() != "" {
		t.Fatal("zero Range must be unset and silent")
	}
}

func TestPair(t *testing.T) {
	p := Pairf("80", "90")
	cases := []struct {
		v     float64
		state plugin.State
		why   string
	}{
		{50, plugin.OK, ""}, {80, plugin.OK, ""}, {85, plugin.Warning, "(warning > 80)"},
		{90.5, plugin.Critical, "(critical > 90)"},
	}
	for _, tc := range cases {
		if s := p.State(tc.v); s != tc.state {
			t.Errorf("State(%v) = %v, want %v", tc.v, s, tc.state)
		}
		if d := p.Describe(tc.v); d != tc.why {
			t.Errorf("Describe(%v) = %q, want %q", tc.v, d, tc.why)
		}
	}
	if got := p.Perf("used", 85, "%").String(); got != "used=85%;80;90" {
		t.Errorf("perf: %s", got)
	}
	if d := Pairf("10:", "5:").Describe(3); d != "(critical < 5)" {
		t.Errorf("Describe low: %q", d)
	}
	if d := Pairf("", "@1:2").Describe(1.5); d != "(critical inside 1:2)" {
		t.Errorf("Describe inside: %q", d)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"10", "10:", "~:10", "10:20", "@10:20", "@~:3", "-1.5:2", ":", "@:"} {
		f.Add(s, 1.0)
	}
	f.Fuzz(func(t *testing.T, s string, v float64) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if r.String() != s {
			t.Fatalf("String() = %q, want %q", r.String(), s)
		}
		start, end, inside := r.Bounds()
		if start > end {
			t.Fatalf("%q: start %v > end %v", s, start, end)
		}
		if math.IsNaN(v) {
			return
		}
		in := v >= start && v <= end
		if r.Alert(v) != (in == inside) {
			t.Fatalf("%q on %v: alert %v, in %v, inside %v", s, v, r.Alert(v), in, inside)
		}
		// Re-parsing what we print must give the same range.
		r2, err := Parse(r.String())
		if err != nil || r2 != r {
			t.Fatalf("%q does not round-trip: %+v %v", s, r2, err)
		}
	})
}
