package raid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

// Flag names and defaults.
const (
	flagSource   = "source"
	flagTWCLI    = "tw-cli"
	flagMDStat   = "mdstat"
	flagSysfs    = "sysfs"
	flagNoArrays = "no-arrays"

	defaultTWCLI  = "tw_cli"
	defaultMDStat = "/proc/mdstat"
	defaultSysfs  = "/sys"
)

const (
	helpSource   = "what to check: auto (md when the mdstat file exists, 3ware when tw_cli is found), md, 3ware, or md,3ware (both, each required)"
	helpTWCLI    = "tw_cli program: a name looked up on PATH, or a path (a wrapper that runs it with sudo, say)"
	helpMDStat   = "mdstat file to read"
	helpSysfs    = "sysfs root; <root>/block/mdN/md/{sync_action,degraded,mismatch_cnt} refine mdstat when present"
	helpNoArrays = "state when no RAID array is found at all: unknown, ok, warning or critical"
)

type options struct {
	source   string
	twcli    string
	mdstat   string
	sysfs    string
	noArrays string

	md, tw, explicit bool
	noArraysState    plugin.State
}

// Spec is check_pbx_raid.
func Spec() plugin.Spec {
	o := &options{}
	return plugin.Spec{
		Name:   "PBX_RAID",
		Binary: "check_pbx_raid",
		Description: "Checks the RAID arrays under the PBX: Linux md (/proc/mdstat, /sys/block/md*/md) and 3ware " +
			"controllers (tw_cli). A failover-class check: CRITICAL means an array can no longer be trusted " +
			"(degraded with no recovery running, failed, inactive); a rebuild, recovery, resync or reshape is " +
			"WARNING; a scheduled check or verify is OK. Applies to the master by default.",
		Examples: []string{
			"check_pbx_raid",
			"check_pbx_raid --source md --no-arrays ok",
			"check_pbx_raid --source 3ware --tw-cli /usr/local/lib/pbxha/tw_cli-sudo -t 20",
		},
		DefaultRole: plugin.RoleMaster,
		Flags: func(f *pflag.FlagSet) {
			f.StringVar(&o.source, flagSource, "auto", helpSource)
			f.StringVar(&o.twcli, flagTWCLI, defaultTWCLI, helpTWCLI)
			f.StringVar(&o.mdstat, flagMDStat, defaultMDStat, helpMDStat)
			f.StringVar(&o.sysfs, flagSysfs, defaultSysfs, helpSysfs)
			f.StringVar(&o.noArrays, flagNoArrays, "unknown", helpNoArrays)
		},
		Validate: func(*plugin.Env) error { return o.validate() },
		Gate:     cluster.Gate,
		Check:    func(ctx context.Context, env *plugin.Env) plugin.Result { return o.check(ctx, env) },
	}
}

func (o *options) validate() error {
	o.md, o.tw, o.explicit = false, false, true
	for _, s := range strings.Split(o.source, ",") {
		switch strings.TrimSpace(s) {
		case "auto":
			if o.source != "auto" {
				return plugin.Usagef("flag --%s: auto cannot be combined, got %q", flagSource, o.source)
			}
			o.md, o.tw, o.explicit = true, true, false
		case "md":
			o.md = true
		case "3ware":
			o.tw = true
		default:
			return plugin.Usagef("flag --%s: %q is not auto, md, 3ware or md,3ware", flagSource, s)
		}
	}
	st, err := plugin.ParseState(o.noArrays)
	if err != nil {
		return plugin.Usagef("flag --%s: %v", flagNoArrays, err)
	}
	o.noArraysState = st
	for _, f := range []struct{ name, val string }{{flagTWCLI, o.twcli}, {flagMDStat, o.mdstat}, {flagSysfs, o.sysfs}} {
		if strings.TrimSpace(f.val) == "" {
			return plugin.Usagef("flag --%s: empty", f.name)
		}
	}
	return nil
}

func (o *options) check(ctx context.Context, env *plugin.Env) plugin.Result {
	var res plugin.Result
	var notes []string // why a source contributed no array
	arrays := 0
	if o.md {
		subs, perf, n, note := o.checkMD(env)
		res.Subs, res.Perf = append(res.Subs, subs...), append(res.Perf, perf...)
		arrays += n
		if note != "" {
			notes = append(notes, note)
		}
	}
	if o.tw {
		subs, perf, n, note := o.check3ware(ctx, env)
		res.Subs, res.Perf = append(res.Subs, subs...), append(res.Perf, perf...)
		arrays += n
		if note != "" {
			notes = append(notes, note)
		}
	}
	if arrays == 0 && res.Overall() != plugin.Unknown {
		res.State = o.noArraysState
		res.Summary = "no RAID array found: " + strings.Join(notes, "; ")
		return res
	}
	res.Long = append(res.Long, notes...)
	return res
}

// checkMD reads mdstat and sysfs. n is the number of arrays found; note
// says why there is none.
func (o *options) checkMD(env *plugin.Env) (subs []plugin.Result, perf []plugin.Perf, n int, note string) {
	env.Step("reading %s", o.mdstat)
	data, err := os.ReadFile(o.mdstat)
	if err != nil {
		if !o.explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, 0, "md: no " + o.mdstat
		}
		return []plugin.Result{{State: plugin.Unknown, Summary: "md: " + plugin.Clean(err.Error(), 0)}}, nil, 0, ""
	}
	arrays, err := ParseMDStat(data)
	if err != nil {
		return []plugin.Result{{State: plugin.Unknown, Summary: "md: " + o.mdstat + ": " + plugin.Clean(err.Error(), 0)}}, nil, 0, ""
	}
	env.Step("reading %s", filepath.Join(o.sysfs, "block", "md*", "md"))
	ReadMDSysfs(o.sysfs, arrays)
	subs, perf, n = EvaluateMD(arrays)
	if n == 0 {
		return subs, nil, 0, "md: " + o.mdstat + " lists no array"
	}
	return subs, perf, n, ""
}

// check3ware asks tw_cli. n is the number of units found; note says why
// there is none.
func (o *options) check3ware(ctx context.Context, env *plugin.Env) (subs []plugin.Result, perf []plugin.Perf, n int, note string) {
	path, err := findTool(o.twcli)
	if err != nil {
		if !o.explicit {
			return nil, nil, 0, "3ware: " + err.Error()
		}
		return []plugin.Result{{State: plugin.Unknown, Summary: "3ware: " + err.Error()}}, nil, 0, ""
	}
	env.Debugf(1, "3ware: using %s", path)
	show, data, out, err := collectTW(ctx, env, toolRunner(path))
	if err != nil && show == nil {
		return []plugin.Result{{State: plugin.Unknown, Summary: "3ware: " + plugin.Clean(err.Error(), 0)}}, nil, 0, ""
	}
	if len(show.Controllers) == 0 {
		msg := "3ware: tw_cli show lists no controller"
		if l := firstLine(strings.Trim(string(out), "-\n ")); l != "" {
			msg += fmt.Sprintf(" (output not understood: %q)", plugin.Clean(l, 60))
		}
		if !o.explicit {
			return nil, nil, 0, msg
		}
		return []plugin.Result{{State: plugin.Unknown, Summary: msg}}, nil, 0, ""
	}
	subs, perf, n = EvaluateTW(data)
	if n == 0 {
		return subs, nil, 0, "3ware: no unit on " + strings.Join(controllerIDs(show.Controllers), ",")
	}
	return subs, perf, n, ""
}

func controllerIDs(cs []TWController) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}
