package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// StateFilePath is where this node's state file is: cluster.toml's
// state_file, else the default.
func StateFilePath(env *plugin.Env) (string, error) {
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return "", err
	}
	if cfg != nil {
		return cfg.StateFile, nil
	}
	return config.DefaultStateFile, nil
}

// Gate is the plugin.Spec Gate of every pbxha check: it reads this node's
// role from the state file and skips the check when the role differs from
// --role, or when maintenance is on (pbxha-eventhandler maintenance on):
// then the check says "skipped: maintenance until ..." and is OK. A node without a state file cannot say where a role-bound check
// applies; that is UNKNOWN, with the way out named.
func Gate(_ context.Context, env *plugin.Env) (string, error) {
	path, err := StateFilePath(env)
	if err != nil {
		return "", err
	}
	// Maintenance first: during planned work every check says so instead
	// of alarming (an Icinga downtime silences mail but not handlers).
	if m, _, active, _ := ReadMaintenance(path, time.Now()); active {
		return MaintenanceText(m), nil
	}
	st, err := ReadState(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cannot tell this node's role: no state file %s (run with --role any outside a cluster)", path)
		}
		return "", err
	}
	if st.Role != env.Role {
		return fmt.Sprintf("node is %s (applies to %s)", st.Role, env.Role), nil
	}
	return "", nil
}
