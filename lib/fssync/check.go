package fssync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"pbxha/lib/rsyncd"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/fssync/manifest"
	"pbxha/lib/peer"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagDir            = "dir"
	flagExclude        = "exclude"
	flagAgeWarning     = "age-warning"
	flagAgeCritical    = "age-critical"
	flagChecksum       = "checksum"
	flagChecksumRecent = "checksum-recent"
	flagMaxList        = "max-list"
	flagModifyWindow   = "modify-window"
)

// Default age thresholds: the master pushes every few minutes; a change
// a quarter of an hour old that is still not on the slave means the push
// is failing, an hour means a failover now loses an hour of voicemail.
const (
	DefaultAgeWarning  = 15 * time.Minute
	DefaultAgeCritical = time.Hour
	DefaultMaxList     = 10
)

type checkConfig struct {
	dirs           []string
	excludes       []string
	count          threshold.Pair
	ageWarn        time.Duration
	ageCrit        time.Duration
	checksum       bool
	checksumRecent time.Duration
	maxList        int
	modifyWindow   time.Duration
}

// Spec is check_pbx_fs_sync.
func Spec() plugin.Spec {
	c := &checkConfig{}
	return plugin.Spec{
		Name:   "PBX_FS_SYNC",
		Binary: "check_pbx_fs_sync",
		Description: "Compares this node's synced directories ([sync] dirs of cluster.toml, or -d) with the\n" +
			"peer's: the peer walks its own copy (pbxha-peer manifest, over SSH) and both listings are\n" +
			"merged as sorted streams. Per directory it counts entries missing on the peer, extra on\n" +
			"the peer and different (type, size, mtime, mode, link target; content with --checksum),\n" +
			"and the age of the oldest change here that the peer has not got. -w/-c judge the count,\n" +
			"--age-warning/--age-critical the age. A peer that cannot be asked is UNKNOWN.",
		Examples: []string{
			"check_pbx_fs_sync                                   # the [sync] dirs of cluster.toml",
			"check_pbx_fs_sync -d /var/spool/asterisk/voicemail -w 10 -c 100",
			"check_pbx_fs_sync --exclude '*.tmp' --age-warning 15m --age-critical 1h",
			"check_pbx_fs_sync --checksum-recent 30m           # also compare content of recent files",
		},
		DefaultRole: plugin.RoleAny,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&c.dirs, flagDir, "d", nil, "synced directory to compare; repeat for several (default: [sync] dirs of cluster.toml; each must be one of them)")
	fs.StringArrayVar(&c.excludes, flagExclude, nil, "GLOB of entries to ignore on both sides (a name, or a path with '/'; trailing '/' for directories); repeatable")
	fs.VarP(&c.count.Warn, "warning", "w", "range for the number of differences per directory: WARNING outside it (default: none)")
	fs.VarP(&c.count.Crit, "critical", "c", "range for the number of differences per directory: CRITICAL outside it (default: none)")
	fs.DurationVar(&c.ageWarn, flagAgeWarning, DefaultAgeWarning, "WARNING when the oldest change not yet on the peer is older (0: never)")
	fs.DurationVar(&c.ageCrit, flagAgeCritical, DefaultAgeCritical, "CRITICAL when the oldest change not yet on the peer is older (0: never)")
	fs.BoolVar(&c.checksum, flagChecksum, false, "also compare the content (SHA-256) of every file")
	fs.DurationVar(&c.checksumRecent, flagChecksumRecent, 0, "also compare the content of files modified within this duration (e.g. 30m)")
	fs.IntVar(&c.maxList, flagMaxList, DefaultMaxList, "differences listed in the long output per directory")
	fs.DurationVar(&c.modifyWindow, flagModifyWindow, 0, "mtimes this close count as equal (as rsync's --modify-window)")
}

func (c *checkConfig) validate(*plugin.Env) error {
	for _, p := range c.excludes {
		if err := manifest.ValidPattern(p); err != nil {
			return plugin.Usagef("flag --%s: %q: %v", flagExclude, p, err)
		}
	}
	for _, d := range c.dirs {
		if !filepath.IsAbs(d) {
			return plugin.Usagef("flag -d/--%s: %q is not an absolute path", flagDir, d)
		}
	}
	switch {
	case c.ageWarn < 0:
		return plugin.Usagef("flag --%s: negative", flagAgeWarning)
	case c.ageCrit < 0:
		return plugin.Usagef("flag --%s: negative", flagAgeCritical)
	case c.checksumRecent < 0:
		return plugin.Usagef("flag --%s: negative", flagChecksumRecent)
	case c.checksumRecent > 0 && c.checksum:
		return plugin.Usagef("flag --%s: give --%s or --%s, not both", flagChecksumRecent, flagChecksum, flagChecksumRecent)
	case c.maxList < 0:
		return plugin.Usagef("flag --%s: %d is negative", flagMaxList, c.maxList)
	case c.modifyWindow < 0:
		return plugin.Usagef("flag --%s: negative", flagModifyWindow)
	}
	return nil
}

// agePair turns the duration flags into a threshold on seconds.
func agePair(warn, crit time.Duration) threshold.Pair {
	s := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	return threshold.Pairf(s(warn), s(crit))
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
	}
	if cfg == nil {
		return plugin.UsageResult(fmt.Errorf("no %s: the peer and the sync dirs come from it", path))
	}
	idx, dirs, err := c.pick(cfg)
	if err != nil {
		return plugin.UsageResult(err)
	}
	env.Step("connecting to the peer over SSH")
	// Most of what is left of -t, not all: a peer that does not answer
	// is UNKNOWN ("cannot ask"), not this check's timeout.
	dctx, dcancel := context.WithTimeout(ctx, dialWait(ctx))
	t0 := time.Now()
	pc, err := peer.Dial(dctx, cfg, peer.ReadOnly())
	// The SSH handshake's own deadline (the same instant) may fire before
	// the context's timer does: either means the peer did not answer.
	late := dctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
	if err != nil && late && ctx.Err() == nil {
		err = fmt.Errorf("no answer within %s", time.Since(t0).Round(100*time.Millisecond))
	}
	dcancel()
	if err != nil {
		return plugin.Resultf(plugin.Unknown, "cannot ask the peer: %s", plugin.Clean(err.Error(), 0))
	}
	defer pc.Close()
	o := CompareOptions{
		Options:  Options{Excludes: append([]string{rsyncd.CanaryName}, c.excludes...), MaxList: c.maxList, ModifyWindow: c.modifyWindow},
		Local:    cfg.Sync.Excludes,
		Checksum: peer.ChecksumNone,
		SamePath: len(c.dirs) > 0,
	}
	switch {
	case c.checksum:
		o.Checksum = peer.ChecksumAll
	case c.checksumRecent > 0:
		o.Checksum, o.Recent = peer.ChecksumRecent, c.checksumRecent
	}
	results := make([]DirResult, len(dirs))
	for i, d := range dirs {
		env.Step("comparing %s with the peer's", d)
		start := time.Now()
		diff, err := CompareWithPeer(ctx, pc, idx[i], d, o)
		env.Debugf(2, "%s: the peer's sync dir %d", d, idx[i])
		env.Debugf(1, "%s: %d local, %d peer entries in %s", d, diff.Local, diff.Remote, time.Since(start).Round(time.Millisecond))
		results[i] = DirResult{Dir: d, Diff: diff, Err: err}
	}
	return Evaluate(results, Policy{Count: c.count, Age: agePair(c.ageWarn, c.ageCrit), Now: time.Now()})
}

// dialWait is the share of -t the SSH connection to the peer may take.
func dialWait(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 10 * time.Second
	}
	left := time.Until(dl)
	return left - min(left/5, time.Second)
}

// pick maps the directories to check to their index in [sync] dirs, which
// is how the peer is asked for its copy.
func (c *checkConfig) pick(cfg *config.Config) ([]int, []string, error) {
	if len(cfg.Sync.Dirs) == 0 && len(c.dirs) == 0 {
		return nil, nil, fmt.Errorf("no directory: give -d/--%s or set [sync] dirs in %s", flagDir, cfg.Path())
	}
	if len(c.dirs) == 0 {
		idx := make([]int, len(cfg.Sync.Dirs))
		for i := range idx {
			idx[i] = i
		}
		return idx, cfg.Sync.Dirs, nil
	}
	var idx []int
	for _, d := range c.dirs {
		found := -1
		for i, s := range cfg.Sync.Dirs {
			if filepath.Clean(s) == filepath.Clean(d) {
				found = i
				break
			}
		}
		if found < 0 {
			return nil, nil, fmt.Errorf("flag -d/--%s: %s is not one of the [sync] dirs of %s (the peer is asked for its copy by that list)", flagDir, d, cfg.Path())
		}
		if found >= peer.MaxSyncDirs {
			return nil, nil, fmt.Errorf("flag -d/--%s: %s is [sync] dir number %d; at most %d can be compared", flagDir, d, found+1, peer.MaxSyncDirs)
		}
		idx = append(idx, found)
	}
	return idx, c.dirs, nil
}

// CompareOptions is Options plus how both walks run.
type CompareOptions struct {
	Options
	Local    []string      // this node's [sync] excludes, for its own walk
	Checksum string        // peer.ChecksumNone, ChecksumAll or ChecksumRecent
	Recent   time.Duration // with ChecksumRecent
	// SamePath requires the peer's directory to have the same path
	// (-d names a path, so it must mean the same on both nodes); without
	// it, [sync] dirs are paired by position, as nodes whose trees live
	// in different places (the lab) need.
	SamePath bool
}

// CompareWithPeer compares dir (the peer's sync dir number index) here
// and on the peer, both walked at the same time.
func CompareWithPeer(ctx context.Context, pc *peer.Client, index int, dir string, o CompareOptions) (Diff, error) {
	remote, err := pc.Manifest(ctx, index, o.Checksum, o.Recent)
	if err != nil {
		return Diff{}, err
	}
	var h manifest.HashPolicy
	switch o.Checksum {
	case peer.ChecksumAll:
		h.All = true
	case peer.ChecksumRecent:
		h.Since = time.Now().Add(-o.Recent)
	}
	diff, cerr := CompareLocal(ctx, dir, o.Local, h, remote, o.Options)
	reply, err := remote.Close()
	if err != nil {
		return diff, err
	}
	if cerr != nil {
		return diff, cerr
	}
	if o.SamePath && filepath.Clean(reply.Dir) != filepath.Clean(dir) {
		return diff, fmt.Errorf("the peer's sync dir number %d is %s, not %s: list [sync] dirs in the same order on both nodes", index+1, reply.Dir, dir)
	}
	return diff, nil
}

// CompareLocal walks dir here and merges it with remote as it goes.
func CompareLocal(ctx context.Context, dir string, excludes []string, h manifest.HashPolicy, remote Source, o Options) (Diff, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := manifest.Write(ctx, pw, dir, excludes, h)
		pw.CloseWithError(err)
		done <- err
	}()
	diff, err := Compare(manifest.NewReader(pr), remote, o)
	pr.Close() // unblocks the walk when Compare stopped early
	werr := <-done
	if werr != nil && err != nil {
		return diff, fmt.Errorf("walking %s: %w", dir, werr)
	}
	return diff, err
}
