package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Maintenance is the maintenance switch: while it is on, the event handler
// logs and does nothing and the checks say "maintenance" instead of
// alarming. It lives beside the state file and expires by itself.
type Maintenance struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	By     string    `json:"by"` // node (and user) that switched it on
	Reason string    `json:"reason,omitempty"`
}

// DefaultMaintenance is how long maintenance lasts unless renewed.
const DefaultMaintenance = 2 * time.Hour

// MaintenancePath is the maintenance file of a cluster.toml.
func MaintenancePath(stateFile string) string {
	return filepath.Join(filepath.Dir(stateFile), "maintenance.json")
}

// ReadMaintenance returns the maintenance record and whether it is in
// force at now. A missing file is "off"; an expired one is returned with
// active false (the caller announces the end and removes it).
func ReadMaintenance(stateFile string, now time.Time) (m Maintenance, exists, active bool, err error) {
	b, err := os.ReadFile(MaintenancePath(stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, false, nil
	}
	if err != nil {
		return m, false, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		// A broken file must not silence failover: it counts as off.
		return m, true, false, fmt.Errorf("maintenance file %s is not valid JSON: %v", MaintenancePath(stateFile), err)
	}
	return m, true, now.Before(m.Until), nil
}

// WriteMaintenance switches maintenance on (atomically).
func WriteMaintenance(stateFile string, m Maintenance) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	return WriteFileAtomic(MaintenancePath(stateFile), append(b, '\n'), 0o644)
}

// ClearMaintenance switches it off. It reports whether it was there: of
// two processes that clear an expired record at once, one gets true and
// announces the end.
func ClearMaintenance(stateFile string) (bool, error) {
	p := MaintenancePath(stateFile)
	tmp := fmt.Sprintf("%s.ending.%d", p, os.Getpid())
	if err := os.Rename(p, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, os.Remove(tmp)
}

// MaintenanceText is what checks and the handler say while it is on.
func MaintenanceText(m Maintenance) string {
	s := fmt.Sprintf("maintenance until %s (by %s", m.Until.Local().Format("2006-01-02 15:04 MST"), m.By)
	if m.Reason != "" {
		s += ": " + m.Reason
	}
	return s + ")"
}
