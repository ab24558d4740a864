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

// Roles a node can have.
const (
	Master  = "master"
	Slave   = "slave"
	Standby = "standby" // the failed node after a failover, waiting for rejoin
)

// State is the content of the state file.
type State struct {
	Node   string    `json:"node"`
	Role   string    `json:"role"`
	Epoch  uint64    `json:"epoch"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

// ReadState reads and validates a state file.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return s, fmt.Errorf("no state file %s: %w", path, fs.ErrNotExist)
		}
		return s, fmt.Errorf("reading state file: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file %s is not valid JSON: %v", path, err)
	}
	switch s.Role {
	case Master, Slave, Standby:
	default:
		return s, fmt.Errorf("state file %s: role %q is not master, slave or standby", path, s.Role)
	}
	return s, nil
}

// WriteState replaces the state file atomically: a temporary file in the
// same directory, fsync, rename, fsync of the directory. A crash leaves
// either the old state or the new one, never half of either.
func WriteState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// WriteFileAtomic writes data to path via a synced temporary file and a
// rename.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("creating temporary file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // harmless after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
