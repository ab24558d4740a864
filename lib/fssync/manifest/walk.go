package manifest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// HashPolicy says which files get a content hash.
type HashPolicy struct {
	All   bool
	Since time.Time // when not zero: files modified at or after it
}

func (h HashPolicy) wants(mtime int64) bool {
	return h.All || (!h.Since.IsZero() && mtime >= h.Since.UnixNano())
}

// Excluded reports whether rel (slash-separated, relative to the synced
// directory) matches one of the patterns, rsync's way for the simple
// cases: a pattern without '/' matches the last component at any depth;
// one with '/' matches the whole relative path (a leading '/' anchors it
// at the top, which it is anyway); a trailing '/' matches directories
// only. Patterns are path.Match globs.
func Excluded(patterns []string, rel string, isDir bool) bool {
	base := rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		base = rel[i+1:]
	}
	for _, p := range patterns {
		if strings.HasSuffix(p, "/") {
			if !isDir {
				continue
			}
			p = strings.TrimSuffix(p, "/")
		}
		subject := base
		if strings.Contains(p, "/") {
			p = strings.TrimPrefix(p, "/")
			subject = rel
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

// ValidPattern reports whether p is a usable exclude pattern.
func ValidPattern(p string) error {
	if strings.Trim(p, "/") == "" {
		return errors.New("empty pattern")
	}
	_, err := path.Match(strings.TrimPrefix(strings.TrimSuffix(p, "/"), "/"), "")
	return err
}

// Walk visits root's tree in WalkDir order, skipping excluded entries
// (and everything below an excluded directory), and calls fn for each.
// Entries that vanish during the walk (a sync's temporary files) are
// skipped; any other error ends the walk.
func Walk(ctx context.Context, root string, excludes []string, hash HashPolicy, fn func(Entry) error) error {
	st, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return &fs.PathError{Op: "walk", Path: root, Err: errors.New("not a directory")}
	}
	n := 0
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil
			}
			return err
		}
		if p == root {
			return nil
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if Excluded(excludes, rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		e := Entry{Path: rel, MTime: info.ModTime().UnixNano(), Mode: unixMode(info.Mode())}
		switch t := info.Mode().Type(); {
		case t == 0:
			e.Type, e.Size = File, info.Size()
			if hash.wants(e.MTime) {
				if e.Hash, err = hashFile(p); err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return nil
					}
					return err
				}
			}
		case t == fs.ModeDir:
			e.Type = Dir
		case t == fs.ModeSymlink:
			e.Type, e.Mode = Symlink, 0 // a link's own mode means nothing on Linux
			if e.Target, err = os.Readlink(p); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
		default:
			e.Type = Other
		}
		return fn(e)
	})
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 02000
	}
	if m&fs.ModeSticky != 0 {
		u |= 01000
	}
	return u
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Write walks root and writes its manifest to w, buffered; it returns how
// many records it wrote.
func Write(ctx context.Context, w io.Writer, root string, excludes []string, hash HashPolicy) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	n := 0
	err := Walk(ctx, root, excludes, hash, func(e Entry) error {
		buf = Append(buf[:0], e)
		n++
		_, err := bw.Write(buf)
		return err
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}
