package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// DefaultMountTimeout bounds each statfs. Local filesystems answer in
// microseconds; an NFS mount whose server is gone does not answer at all.
const DefaultMountTimeout = 2 * time.Second

const (
	helpPath         = "a path to check, repeatable; reported under the path as given (default: [disk] paths of cluster.toml, else every real filesystem in mountinfo)"
	helpWarning      = "space used in percent, WARNING outside this range"
	helpCritical     = "space used in percent, CRITICAL outside this range"
	helpInodeWarning = "inodes used in percent, WARNING outside this range"
	helpInodeCrit    = "inodes used in percent, CRITICAL outside this range"
	helpFreeWarning  = "WARNING when less than SIZE is free (e.g. 2GiB; KiB MiB GiB TiB are powers of 1024, KB MB GB TB of 1000)"
	helpFreeCritical = "CRITICAL when less than SIZE is free"
	helpMountinfo    = "mountinfo file listing the mounts (DIR/self/mountinfo or DIR/PID/mountinfo)"
	helpInclude      = "check filesystems of this type although it is left out by default (e.g. tmpfs); repeatable or comma-separated"
	helpExclude      = "leave filesystems of this type out of the default set; repeatable or comma-separated"
	helpMountTimeout = "give up on a mount whose statfs has not returned by then (reported with -t's state); must be shorter than -t"
)

// options are check_pbx_disk's flags.
type options struct {
	paths        []string
	used         threshold.Pair
	inodes       threshold.Pair
	freeWarn     Size
	freeCrit     Size
	mountinfo    string
	include      []string
	exclude      []string
	mountTimeout time.Duration
}

func defaultOptions() *options {
	return &options{
		used:         threshold.Pairf("80", "90"),
		inodes:       threshold.Pairf("90", "95"),
		mountinfo:    DefaultMountinfo,
		mountTimeout: DefaultMountTimeout,
	}
}

func (o *options) flags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.paths, "path", "p", nil, helpPath)
	fs.VarP(&o.used.Warn, "warning", "w", helpWarning)
	fs.VarP(&o.used.Crit, "critical", "c", helpCritical)
	fs.VarP(&o.inodes.Warn, "inode-warning", "W", helpInodeWarning)
	fs.VarP(&o.inodes.Crit, "inode-critical", "K", helpInodeCrit)
	fs.Var(&o.freeWarn, "free-warning", helpFreeWarning)
	fs.Var(&o.freeCrit, "free-critical", helpFreeCritical)
	fs.StringVar(&o.mountinfo, "mountinfo", o.mountinfo, helpMountinfo)
	fs.StringSliceVar(&o.include, "include-type", nil, helpInclude)
	fs.StringSliceVar(&o.exclude, "exclude-type", nil, helpExclude)
	fs.DurationVar(&o.mountTimeout, "mount-timeout", o.mountTimeout, helpMountTimeout)
}

// validate refuses what cannot work and fits the mount timeout under -t,
// so that one hung mount is reported before the whole check times out.
func (o *options) validate(env *plugin.Env) error {
	for _, p := range o.paths {
		if p == "" {
			return plugin.Usagef("flag --path: empty path")
		}
	}
	if o.mountinfo == "" {
		return plugin.Usagef("flag --mountinfo: empty path")
	}
	if o.freeWarn.IsSet() && o.freeCrit.IsSet() && o.freeCrit.Bytes > o.freeWarn.Bytes {
		return plugin.Usagef("flag --free-critical: %s is more than --free-warning %s, so WARNING could never be reached", o.freeCrit.String(), o.freeWarn.String())
	}
	if o.mountTimeout <= 0 {
		return plugin.Usagef("flag --mount-timeout: %s is not a positive duration", o.mountTimeout)
	}
	if o.mountTimeout >= env.Timeout {
		if env.Flags != nil && env.Flags.Changed("mount-timeout") {
			return plugin.Usagef("flag --mount-timeout: %s must be shorter than -t %s", o.mountTimeout, env.Timeout)
		}
		o.mountTimeout = env.Timeout * 3 / 4
	}
	return nil
}

// Spec is check_pbx_disk.
func Spec() plugin.Spec { return newSpec(Statfs) }

func newSpec(stat StatFunc) plugin.Spec {
	o := defaultOptions()
	return plugin.Spec{
		Name:   "PBX_DISK",
		Binary: "check_pbx_disk",
		Description: "Checks space and inode use of this node's filesystems, each reported on its own line.\n" +
			"Percentages are df's: used / (used + available), leaving out the blocks reserved for root.\n" +
			"Without -p it checks the [disk] paths of cluster.toml, else every real filesystem in mountinfo\n" +
			"(pseudo, tmpfs and read-only image types are left out; bind mounts are checked once).\n" +
			"Perfdata per mount: PATH=usedB with the percent thresholds in bytes, 'PATH used'=%,\n" +
			"'PATH inodes'=% and, with --free-*, 'PATH free'=B.",
		Examples: []string{
			"check_pbx_disk",
			"check_pbx_disk -w 85 -c 95 -p / -p /var",
			"check_pbx_disk --free-warning 5GiB --free-critical 1GiB -p /var/spool/asterisk",
			"check_pbx_disk --include-type tmpfs --exclude-type nfs4",
		},
		DefaultRole: plugin.RoleAny,
		Flags:       o.flags,
		Validate:    o.validate,
		Gate:        cluster.Gate,
		Check: func(ctx context.Context, env *plugin.Env) plugin.Result {
			return o.check(ctx, env, stat)
		},
	}
}

func (o *options) check(ctx context.Context, env *plugin.Env, stat StatFunc) plugin.Result {
	mounts, explicit, err := o.mounts(env)
	if err != nil {
		return plugin.Result{State: plugin.Unknown, Summary: err.Error()}
	}
	readings := StatAll(ctx, mounts, o.mountTimeout, stat, func(path string) { env.Step("statfs %s", path) })
	kept := readings[:0]
	for _, r := range readings {
		// A mount found in mountinfo may be gone by now, or sit below a
		// directory the nagios user cannot enter (another user's FUSE
		// mount, a container's private tree): neither is a disk problem.
		// A path the admin named is different; its absence is the news.
		if !explicit && (errors.Is(r.Err, fs.ErrNotExist) || errors.Is(r.Err, fs.ErrPermission)) {
			env.Debugf(1, "skipped %s (%s): %v", r.Path, r.FSType, r.Err)
			continue
		}
		if r.Err == nil {
			env.Debugf(2, "statfs %s: total %d free %d avail %d inodes %d ifree %d",
				r.Path, r.Stats.Total, r.Stats.Free, r.Stats.Avail, r.Stats.Inodes, r.Stats.IFree)
		}
		kept = append(kept, r)
	}
	return Evaluate(kept, Policy{
		Used:         o.used,
		Inodes:       o.inodes,
		FreeWarn:     o.freeWarn,
		FreeCrit:     o.freeCrit,
		TimeoutState: env.TimeoutSt,
		MountTimeout: o.mountTimeout,
	})
}

// mounts is what to check: -p, else cluster.toml's [disk] paths, else the
// real filesystems of mountinfo. explicit is true for the first two.
func (o *options) mounts(env *plugin.Env) (mounts []Mount, explicit bool, err error) {
	paths := o.paths
	if len(paths) == 0 {
		env.Step("reading config")
		cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
		if err != nil {
			return nil, false, err
		}
		if cfg != nil {
			paths = cfg.Disk.Paths
		}
	}
	if len(paths) > 0 {
		seen := map[string]bool{}
		for _, p := range paths {
			p = filepath.Clean(p)
			if !seen[p] {
				seen[p] = true
				mounts = append(mounts, Mount{Path: p})
			}
		}
		return mounts, true, nil
	}
	env.Step("reading %s", o.mountinfo)
	infos, err := ReadMountinfo(o.mountinfo)
	if err != nil {
		return nil, false, err
	}
	mounts, skipped := Select(infos, SkipTypes(o.include, o.exclude))
	for _, s := range skipped {
		env.Debugf(3, "skipped %s", s)
	}
	if len(mounts) == 0 {
		return nil, false, fmt.Errorf("no filesystems to check in %s (%d mounts, all of types left out)", o.mountinfo, len(infos))
	}
	return mounts, false, nil
}
