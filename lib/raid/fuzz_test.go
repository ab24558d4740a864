package raid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbxha/lib/plugin"
)

// seeds adds every file under the testdata folder sub and, when present,
// the same folder of the shared corpus.
func seeds(f *testing.F, sub string) {
	roots := []string{filepath.Join("testdata", sub)}
	for dir, _ := os.Getwd(); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if c := filepath.Join(dir, "shared", "corpus", "raid", sub); isDir(c) {
			roots = append(roots, c)
			break
		}
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(string(b))
				}
			}
			return nil
		})
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// A summary must stay on its line and never start perfdata.
func checkSubs(t *testing.T, subs []plugin.Result, perf []plugin.Perf) {
	t.Helper()
	for _, s := range subs {
		if strings.ContainsAny(s.Summary, "|\n\r") || s.Summary == "" {
			t.Fatalf("summary %q", s.Summary)
		}
	}
	r := plugin.Result{Subs: subs, Perf: perf}
	out := r.Format("PBX_RAID")
	first, _, _ := strings.Cut(out, "\n")
	if _, p, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(p); err != nil {
			t.Fatalf("perfdata %q: %v", p, err)
		}
	}
}

func FuzzTWCLI(f *testing.F) {
	seeds(f, "tw_cli")
	f.Fuzz(func(t *testing.T, text string) {
		show := ParseTWShow(text)
		for _, c := range show.Controllers {
			if !twControllerID.MatchString(c.ID) {
				t.Fatalf("controller %q", c.ID)
			}
		}
		for _, e := range show.Enclosures {
			if !twEnclosureID.MatchString(e) {
				t.Fatalf("enclosure %q", e)
			}
		}
		info := ParseTWInfo(text)
		for _, u := range info.Units {
			if !twUnitID.MatchString(u.ID) || u.Rebuild < -1 || u.Rebuild > 100 || u.Progress < -1 || u.Progress > 100 {
				t.Fatalf("unit %+v", u)
			}
		}
		for _, d := range info.Drives {
			if !twPortID.MatchString(d.Port) || (d.Unit != "-" && !twUnitID.MatchString(d.Unit)) {
				t.Fatalf("drive %+v", d)
			}
		}
		d := TWData{Enclosures: []TWEnclosureData{{ID: "/c0/e0", Items: ParseTWEnclosure(text)}}}
		for _, c := range show.Controllers {
			d.Controllers = append(d.Controllers, TWControllerData{TWController: c, Info: info})
		}
		if len(d.Controllers) == 0 {
			d.Controllers = []TWControllerData{{TWController: TWController{ID: "c0", BBU: "OK"}, Info: info}}
		}
		subs, perf, _ := EvaluateTW(d)
		checkSubs(t, subs, perf)
	})
}

// FuzzMDStat runs the whole mdstat parser, procfs included. procfs works
// on a file, so this target is slow; FuzzMDStatOwn covers this package's
// own part quickly.
func FuzzMDStat(f *testing.F) {
	seeds(f, "mdstat")
	f.Fuzz(func(t *testing.T, text string) {
		arrays, err := ParseMDStat([]byte(text))
		if err != nil {
			if strings.Contains(err.Error(), procfsPanicked) {
				t.Fatalf("procfs panicked past checkPersonalities: %v", err)
			}
			return
		}
		for _, a := range arrays {
			if !mdName.MatchString(a.Name) || a.Degraded() < 0 {
				t.Fatalf("array %+v", a)
			}
		}
		subs, perf, n := EvaluateMD(arrays)
		if len(subs) != len(arrays) || n > len(arrays) {
			t.Fatalf("%d subs, %d arrays, %d counted", len(subs), len(arrays), n)
		}
		checkSubs(t, subs, perf)
	})
}

// FuzzMDStatOwn covers what ParseMDStat reads itself, next to procfs.
func FuzzMDStatOwn(f *testing.F) {
	seeds(f, "mdstat")
	f.Fuzz(func(t *testing.T, text string) {
		data := dropComments([]byte(text))
		if strings.Contains("\n"+string(data), "\n#") {
			t.Fatalf("comment left in %q", data)
		}
		checkPersonalities(data)
		for name, x := range scanMDStat(data) {
			if strings.ContainsAny(name, " \t\n") || name == "" {
				t.Fatalf("array name %q", name)
			}
			if strings.Trim(x.status, "U_") != "" || strings.ContainsAny(x.container, " \t\n/") {
				t.Fatalf("%s: %+v", name, x)
			}
		}
	})
}
