package fssync

import (
	"fmt"
	"io"
	"strings"
	"time"

	"pbxha/lib/fssync/manifest"
)

// Source yields manifest entries in manifest.Compare order, io.EOF at the
// end (*manifest.Reader is one).
type Source interface {
	Next() (manifest.Entry, error)
}

// Kinds of difference.
const (
	Missing   = "missing"   // here, not on the peer
	Extra     = "extra"     // on the peer, not here
	Different = "different" // on both, not the same
)

// Difference is one entry that is not the same on both nodes.
type Difference struct {
	Path string
	Kind string
	What string // for Different: what differs ("size 3 != 5, mtime")
}

// Diff is the comparison of one directory.
type Diff struct {
	Local, Remote             int // entries compared on each side
	Missing, Extra, Different int
	// Oldest is the mtime (unix ns) of the oldest unsynced change: of a
	// local entry missing on the peer, or the later of both mtimes of an
	// entry that differs. HasOldest is false when there is none.
	Oldest    int64
	HasOldest bool
	List      []Difference // the first MaxList differences
}

// Total is the number of differences.
func (d Diff) Total() int { return d.Missing + d.Extra + d.Different }

// Options shape the comparison.
type Options struct {
	Excludes []string // applied to both sides, on top of what each walk excluded
	MaxList  int      // differences kept in Diff.List
	// ModifyWindow is how far apart two mtimes may be and still count as
	// equal (rsync's --modify-window), for a copy onto a file system with
	// coarser timestamps.
	ModifyWindow time.Duration
}

// Compare merges the two streams. Both are walks in the same order, so
// one entry of each is held at a time and memory does not grow with the
// tree.
func Compare(local, remote Source, o Options) (Diff, error) {
	var d Diff
	next := func(s Source, side string, count *int) (manifest.Entry, bool, error) {
		for {
			e, err := s.Next()
			if err == io.EOF {
				return e, false, nil
			}
			if err != nil {
				return e, false, fmt.Errorf("%s manifest: %w", side, err)
			}
			if len(o.Excludes) > 0 && excludedByAncestor(o.Excludes, e) {
				continue
			}
			*count++
			return e, true, nil
		}
	}
	l, lok, err := next(local, "local", &d.Local)
	if err != nil {
		return d, err
	}
	r, rok, err := next(remote, "peer", &d.Remote)
	if err != nil {
		return d, err
	}
	for lok || rok {
		c := 0
		switch {
		case !lok:
			c = 1
		case !rok:
			c = -1
		default:
			c = manifest.Compare(l.Path, r.Path)
		}
		switch {
		case c < 0:
			d.Missing++
			d.note(Difference{Path: l.Path, Kind: Missing}, o.MaxList)
			d.age(l.MTime)
			if l, lok, err = next(local, "local", &d.Local); err != nil {
				return d, err
			}
		case c > 0:
			d.Extra++
			d.note(Difference{Path: r.Path, Kind: Extra}, o.MaxList)
			if r, rok, err = next(remote, "peer", &d.Remote); err != nil {
				return d, err
			}
		default:
			if what := differs(l, r, o.ModifyWindow); what != "" {
				d.Different++
				d.note(Difference{Path: l.Path, Kind: Different, What: what}, o.MaxList)
				// The two have differed at least since the later of the
				// two changes: a file changed on the peer only is as
				// unsynced as one changed here, from that moment.
				d.age(max(l.MTime, r.MTime))
			}
			if l, lok, err = next(local, "local", &d.Local); err != nil {
				return d, err
			}
			if r, rok, err = next(remote, "peer", &d.Remote); err != nil {
				return d, err
			}
		}
	}
	return d, nil
}

// excludedByAncestor applies the check's own --exclude patterns. The
// walks already skip below directories their own excludes name; these
// come later, so an entry is dropped when it or any directory above it
// matches.
func excludedByAncestor(patterns []string, e manifest.Entry) bool {
	p := e.Path
	isDir := e.Type == manifest.Dir
	for {
		if manifest.Excluded(patterns, p, isDir) {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p, isDir = p[:i], true
	}
}

func (d *Diff) note(x Difference, max int) {
	if len(d.List) < max {
		d.List = append(d.List, x)
	}
}

func (d *Diff) age(mtime int64) {
	if !d.HasOldest || mtime < d.Oldest {
		d.Oldest, d.HasOldest = mtime, true
	}
}

// differs says what is not the same, "" when nothing. A directory's mtime
// is not compared: adding a file changes it, and that file is already
// counted as missing. A link's mtime and mode are not compared either:
// its target is what matters. Hashes count only when both sides have one.
func differs(l, r manifest.Entry, window time.Duration) string {
	if l.Type != r.Type {
		return fmt.Sprintf("type %s != %s", typeName(l.Type), typeName(r.Type))
	}
	var w []string
	if l.Type == manifest.File {
		if l.Size != r.Size {
			w = append(w, fmt.Sprintf("size %d != %d", l.Size, r.Size))
		}
		if dt := l.MTime - r.MTime; dt > int64(window) || -dt > int64(window) {
			side := "newer here"
			if dt < 0 {
				side, dt = "newer on the peer", -dt
			}
			w = append(w, "mtime "+side+" by "+time.Duration(dt).Round(time.Millisecond).String())
		}
		if l.Hash != "" && r.Hash != "" && l.Hash != r.Hash {
			w = append(w, "content")
		}
	}
	if l.Type != manifest.Symlink && l.Mode != r.Mode {
		w = append(w, fmt.Sprintf("mode %04o != %04o", l.Mode, r.Mode))
	}
	if l.Type == manifest.Symlink && l.Target != r.Target {
		w = append(w, "link target")
	}
	return strings.Join(w, ", ")
}

func typeName(t byte) string {
	switch t {
	case manifest.File:
		return "file"
	case manifest.Dir:
		return "directory"
	case manifest.Symlink:
		return "symlink"
	}
	return "special file"
}
