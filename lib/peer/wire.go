package peer

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/probe"
)

// The replies, one JSON object each on the remote's stdout. A failed
// command's reply has Error set (and the remote exits non-zero); it may
// still carry what could be learnt (StateReply's VIP fields).

// Status is part of every reply.
type Status struct {
	Error string `json:"error,omitempty"`
}

func (s *Status) setError(msg string) { s.Error = msg }
func (s *Status) errorText() string   { return s.Error }

// replier is every reply type (through its embedded Status).
type replier interface {
	setError(string)
	errorText() string
}

// VersionReply answers `version`.
type VersionReply struct {
	Status
	Version  string   `json:"version"`
	Commands []string `json:"commands"` // the subcommands this peer knows
}

// StateReply answers `state`: the peer's state file and, when the config
// names a VIP, whether the VIP is bound on the peer.
type StateReply struct {
	Status
	Node         string         `json:"node"` // the peer's own name for itself
	State        *cluster.State `json:"state,omitempty"`
	VIP          string         `json:"vip,omitempty"`
	VIPInterface string         `json:"vip_interface,omitempty"`
	VIPBound     *bool          `json:"vip_bound,omitempty"` // nil when the VIP is not configured or could not be read
	VIPError     string         `json:"vip_error,omitempty"`
	// Services: the PBX services' process counts on the peer.
	Services     []Running            `json:"services,omitempty"`
	Maintenance  *cluster.Maintenance `json:"maintenance,omitempty"` // in force
	LastFailover json.RawMessage      `json:"last_failover,omitempty"`
}

// TimeReply answers `time`.
type TimeReply struct {
	Status
	UnixNano int64 `json:"unix_nano"`
}

// ProbeReply answers `probe`: one result per address, in order.
type ProbeReply struct {
	Status
	Results []ProbeResult `json:"results"`
}

// ProbeResult is probe.Result on the wire.
type ProbeResult struct {
	Target     netip.Addr `json:"target"`
	Sent       int        `json:"sent"`
	Received   int        `json:"received"`
	RTTNanos   int64      `json:"rtt_ns"`
	Loss       float64    `json:"loss"`
	Reachable  bool       `json:"reachable"`
	Err        string     `json:"err,omitempty"`
	Privileged bool       `json:"privileged,omitempty"`
	Detail     []string   `json:"detail,omitempty"`
}

func toWire(r probe.Result) ProbeResult {
	return ProbeResult{
		Target: r.Target, Sent: r.Sent, Received: r.Received, RTTNanos: int64(r.RTT),
		Loss: r.Loss, Reachable: r.Reachable, Err: r.Err, Privileged: r.Privileged, Detail: r.Detail,
	}
}

func (w ProbeResult) result() probe.Result {
	return probe.Result{
		Target: w.Target, Sent: w.Sent, Received: w.Received, RTT: time.Duration(w.RTTNanos),
		Loss: w.Loss, Reachable: w.Reachable, Err: w.Err, Privileged: w.Privileged, Detail: w.Detail,
	}
}

// Running is one PBX service's process count on a node, as `state` tells
// it (ServicesFunc fills it).
type Running struct {
	Name  string `json:"name"`
	Procs int    `json:"procs"`
	OK    bool   `json:"ok"` // the count is in the service's expected range
}

// ServicesFunc counts this node's PBX service processes for `state`;
// pbxha-peer's main sets it (lib/services), nil leaves them out.
var ServicesFunc func(ctx context.Context, cfg *config.Config) ([]Running, error)
