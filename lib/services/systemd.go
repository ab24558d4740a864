package services

import (
	"context"
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/dbus"

	"pbxha/lib/plugin"
)

// SystemdBooted is sd_booted(3): systemd is PID 1 when this directory
// exists.
func SystemdBooted(runSystemd string) bool {
	fi, err := os.Stat(runSystemd)
	return err == nil && fi.IsDir()
}

// UnitState is what systemd says of one unit.
type UnitState struct {
	Name, Load, Active, Sub string
}

// UnitStates asks systemd over D-Bus, bounded by ctx.
func UnitStates(ctx context.Context, units []string) (map[string]UnitState, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	st, err := conn.ListUnitsByNamesContext(ctx, units)
	if err != nil {
		return nil, fmt.Errorf("asking systemd for units: %w", err)
	}
	out := map[string]UnitState{}
	for _, u := range st {
		out[u.Name] = UnitState{Name: u.Name, Load: u.LoadState, Active: u.ActiveState, Sub: u.SubState}
	}
	return out, nil
}

// UnitResult maps a unit's state to a check state: active is fine,
// activating/reloading/deactivating is on its way (WARNING), anything else
// means the PBX service is not running (CRITICAL).
func UnitResult(name string, u UnitState) plugin.Result {
	desc := fmt.Sprintf("%s: unit %s %s/%s", name, u.Name, u.Active, u.Sub)
	switch {
	case u.Load == "not-found":
		return plugin.Resultf(plugin.Critical, "%s: unit %s not found", name, u.Name)
	case u.Active == "active":
		return plugin.Result{State: plugin.OK, Summary: desc}
	case u.Active == "activating" || u.Active == "reloading" || u.Active == "deactivating":
		return plugin.Result{State: plugin.Warning, Summary: desc}
	}
	return plugin.Result{State: plugin.Critical, Summary: desc}
}
