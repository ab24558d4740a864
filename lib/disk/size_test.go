package disk

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"0":       0,
		"512":     512,
		"512B":    512,
		"1KiB":    1024,
		"1kib":    1024,
		"500MiB":  500 << 20,
		"2GiB":    2 << 30,
		"2 GiB":   2 << 30,
		"1.5GiB":  3 << 29,
		"1TiB":    1 << 40,
		"1KB":     1000,
		"1kB":     1000,
		"500MB":   500e6,
		"2GB":     2e9,
		"3TB":     3e12,
		"0.5KiB":  512,
		"1.0001B": 1,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "2G", "2k", "2GiBs", "-1GiB", "+1GiB", "1e9", "0x10", "1,5GiB", " 2GiB", "2GiB ", "2  GiB", "NaN", "Inf", "99999999TiB", "9223372036854775808"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestSizeFlagNamesTheFlag(t *testing.T) {
	code, first, _ := execute(t, newSpec(fakeStat(nil)), "-p", "/", "--free-warning", "2G")
	if code != 3 || !strings.Contains(first, `UNKNOWN - usage: invalid argument "2G" for "--free-warning" flag`) {
		t.Errorf("exit %d, %q", code, first)
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[uint64]string{
		0:                "0 B",
		1023:             "1023 B",
		1024:             "1 KiB",
		1536:             "1.5 KiB",
		1048575:          "1 MiB",
		23*1<<30 + 1<<29: "23.5 GiB",
		5 << 40:          "5 TiB",
		3 << 50:          "3 PiB",
		1 << 62:          "4096 PiB",
	} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"2GiB", "500MiB", "1.5 TB", "0", "1e3", "99999999999TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseSize(s)
		if err != nil {
			return
		}
		if b >= 1<<63 {
			t.Fatalf("ParseSize(%q) = %d, beyond 2^63", s, b)
		}
		// A size in plain bytes reads back as itself.
		if again, err := ParseSize(strconv.FormatUint(b, 10) + "B"); err != nil || again != b {
			t.Fatalf("ParseSize(%q) = %d, but %dB reads as %d, %v", s, b, b, again, err)
		}
		FormatBytes(b)
	})
}
