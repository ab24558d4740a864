package services

import (
	"context"
	"os"

	"pbxha/lib/config"
)

// Running is how many processes one configured service has now.
type Running struct {
	Name  string `json:"name"`
	Procs int    `json:"procs"`
	// OK: the count is inside the service's expected range.
	OK bool `json:"ok"`
}

// RunningNow counts the processes of cluster.toml's services in procRoot
// (normally /proc), leaving out this process and its ancestors. It is what
// `pbxha-eventhandler status` and the peer's `state` show; units are not
// asked (a unit's main process is matched by its command line or name
// when the config gives one).
func RunningNow(ctx context.Context, cfg *config.Config, procRoot string) ([]Running, error) {
	svcs, err := FromConfig(cfg)
	if err != nil || len(svcs) == 0 {
		return nil, err
	}
	pl, err := ReadProcs(ctx, procRoot)
	if err != nil {
		return nil, err
	}
	ex := Excluded(pl.Procs, os.Getpid())
	out := make([]Running, 0, len(svcs))
	for _, s := range svcs {
		if !s.HasMatcher() {
			continue
		}
		n := len(Match(s, pl.Procs, ex))
		out = append(out, Running{Name: s.Name, Procs: n, OK: !s.Count.Alert(float64(n))})
	}
	return out, nil
}
