// Package icinga2test runs the real icinga2 binary's validation on a
// configuration folder for tests, and reads the object dump it writes.
package icinga2test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Args is `icinga2 daemon [-C] -c DIR/icinga2.conf` run as the current
// user, with ConfigDir and ZonesDir in DIR and Icinga's var directories
// (made here) under DIR/var.
func Args(t testing.TB, dir string, validate bool) []string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	a := []string{"daemon"}
	if validate {
		a = append(a, "-C")
	}
	a = append(a, "-c", filepath.Join(dir, "icinga2.conf"),
		"-DRunAsUser="+u.Username, "-DRunAsGroup="+g.Name,
		"-DConfigDir="+dir, "-DZonesDir="+filepath.Join(dir, "zones.d"))
	for _, k := range []string{"DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir"} {
		d := filepath.Join(dir, "var", k)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		a = append(a, "-D"+k+"="+d)
	}
	return a
}

// Object is one entry of the object dump `daemon -C` writes (the file
// `icinga2 object list` reads).
type Object struct {
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties"`
}

// Objects reads the dump a `daemon -C` run with Args(dir) wrote:
// netstrings of JSON.
func Objects(t testing.TB, dir string) []Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "var", "CacheDir", "icinga2.debug"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []Object
	for len(data) > 0 {
		n, rest, ok := bytes.Cut(data, []byte(":"))
		size, err := strconv.Atoi(string(n))
		if !ok || err != nil || size+1 > len(rest) || rest[size] != ',' {
			t.Fatalf("icinga2.debug: bad netstring near %.40q", data)
		}
		var o Object
		if err := json.Unmarshal(rest[:size], &o); err != nil {
			t.Fatalf("icinga2.debug: %v", err)
		}
		objs = append(objs, o)
		data = rest[size+1:]
	}
	return objs
}

// ByType keeps the objects of one type ("Service", "CheckCommand", ...).
func ByType(objs []Object, typ string) []Object {
	var out []Object
	for _, o := range objs {
		if o.Type == typ {
			out = append(out, o)
		}
	}
	return out
}
