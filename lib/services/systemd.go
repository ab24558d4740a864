package services

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
)

// DefaultSystemdRun exists when systemd is PID 1 (sd_booted(3)).
const DefaultSystemdRun = "/run/systemd/system"

// SystemdBooted is sd_booted(3): systemd creates this directory early at
// boot, and nothing else does; a container with systemd merely installed
// lacks it.
func SystemdBooted(dir string) bool {
	fi, err := os.Lstat(dir)
	return err == nil && fi.IsDir()
}

// UnitSource returns the state of each unit, in the order asked.
type UnitSource func(ctx context.Context, units []string) ([]UnitState, error)

// SystemdUnits asks systemd over D-Bus. ctx bounds the connection as well
// as the calls: godbus closes the connection when ctx ends, which unblocks
// its handshake too.
func SystemdUnits(ctx context.Context, units []string) ([]UnitState, error) {
	type reply struct {
		states []UnitState
		err    error
	}
	// The library's Hello and AddMatch calls take no context; the
	// goroutine makes the deadline hold whatever they do.
	ch := make(chan reply, 1)
	go func() {
		s, err := systemdUnits(ctx, units)
		ch <- reply{s, err}
	}()
	select {
	case r := <-ch:
		return r.states, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("asking systemd over D-Bus: %w", ctx.Err())
	}
}

func systemdUnits(ctx context.Context, units []string) ([]UnitState, error) {
	conn, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := make([]UnitState, 0, len(units))
	for _, u := range units {
		// One unit per call: the reply names each unit by its primary
		// name (mysql.service asked, mariadb.service answered) and skips
		// names systemd finds invalid, so a batch cannot be lined up with
		// the question reliably.
		st, err := conn.ListUnitsByNamesContext(ctx, []string{u})
		if err != nil {
			return nil, fmt.Errorf("asking systemd for %s: %w", u, err)
		}
		if len(st) != 1 {
			return nil, fmt.Errorf("asking systemd for %s: %d units in the reply", u, len(st))
		}
		us := UnitState{Name: u, LoadState: st[0].LoadState, ActiveState: st[0].ActiveState, SubState: st[0].SubState}
		if us.ActiveState == "active" && isService(st[0].Name) {
			// The PID is a detail for the admin; a unit whose property
			// cannot be read is reported without it.
			if p, err := conn.GetServicePropertyContext(ctx, st[0].Name, "MainPID"); err == nil {
				if pid, ok := p.Value.Value().(uint32); ok {
					us.MainPID = pid
				}
			}
		}
		out = append(out, us)
	}
	return out, nil
}

func isService(unit string) bool { return strings.HasSuffix(unit, ".service") }

// connect is dbus.NewWithContext with both errors kept: the system bus,
// else, as root, systemd's private socket, which works while dbus-daemon
// is down. The library would report only the second failure.
func connect(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err == nil {
		return conn, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("connecting to systemd over the D-Bus system bus: %w", err)
	}
	conn, err2 := dbus.NewSystemdConnectionContext(ctx)
	if err2 != nil {
		return nil, fmt.Errorf("connecting to systemd over the D-Bus system bus: %v; over its private socket: %w", err, err2)
	}
	return conn, nil
}
