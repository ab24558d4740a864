package failover

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

// LastFailoverPath is where the last promote's timings are kept.
func LastFailoverPath(stateFile string) string {
	return filepath.Join(filepath.Dir(stateFile), "last-failover.json")
}

// LastFailover is the record of the last promote on this node.
type LastFailover struct {
	At      time.Time `json:"at"`
	Node    string    `json:"node"`
	Trigger string    `json:"trigger"`
	Epoch   uint64    `json:"epoch"`
	// StartupMS: from the handler's process start to its promote's start
	// (runtime, config, lock, decision); the other times count from the
	// promote's start.
	StartupMS  float64 `json:"startup_ms"`
	VIPMS      float64 `json:"vip_ms"`
	GARPMS     float64 `json:"garp_ms"`
	ServicesMS float64 `json:"services_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// WriteLastFailover records a promote.
func WriteLastFailover(cfg *config.Config, lf LastFailover) error {
	b, _ := json.MarshalIndent(lf, "", "  ")
	return cluster.WriteFileAtomic(LastFailoverPath(cfg.StateFile), append(b, '\n'), 0o644)
}

// ReadLastFailover reads the record; ok is false when there is none.
func ReadLastFailover(stateFile string) (lf LastFailover, ok bool) {
	b, err := os.ReadFile(LastFailoverPath(stateFile))
	if err != nil || json.Unmarshal(b, &lf) != nil {
		return lf, false
	}
	return lf, true
}
