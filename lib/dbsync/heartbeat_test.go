package dbsync

import (
	"strings"
	"testing"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/plugin"
)

func TestEvaluateHeartbeat(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	t0 := int64(1_700_000_000) * s
	primary := db.Heartbeat{Node: "node1", Token: "aaa", TS: t0, Now: t0 + 50*s}
	older := db.Heartbeat{Node: "node1", Token: "old", TS: t0 - 60*s, Now: t0 + 50*s}
	missingTable := &db.Error{Step: "reading the heartbeat from pbxha_heartbeat", Msg: "ERROR 1146 (42S02): Table 'pbx.pbxha_heartbeat' doesn't exist", Number: 1146}
	cases := []struct {
		name  string
		h     HeartbeatObservation
		state plugin.State
		first string
	}{
		{
			// The newest heartbeat is 50 s old, the primary idle since:
			// not 50 s of lag.
			"replica holds the primary's newest heartbeat",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: primary, PrimaryFound: true, Replica: primary, ReplicaFound: true, FirstRead: true, Waited: time.Millisecond},
			plugin.OK,
			"PBX_DB_SYNC OK - heartbeat lag 0s (the replica has node1's newest heartbeat, written 50s ago) | lag_seconds=0s;30;120",
		},
		{
			"it arrives while we wait: its delay",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: db.Heartbeat{Node: "node1", Token: "aaa", TS: t0, Now: t0 + s/2}, PrimaryFound: true,
				Replica: primary, ReplicaFound: true, Waited: 1500 * time.Millisecond},
			plugin.OK,
			"PBX_DB_SYNC OK - heartbeat lag 2s (node1's heartbeat reached the replica) | lag_seconds=2s;30;120",
		},
		{
			"--write-heartbeat, seen at once: the small delay, not 0",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: db.Heartbeat{Node: "node1", Token: "aaa", TS: t0, Now: t0 + 2000}, PrimaryFound: true,
				Wrote: true, Replica: primary, ReplicaFound: true, FirstRead: true, Waited: 3 * time.Millisecond},
			plugin.OK,
			"PBX_DB_SYNC OK - heartbeat lag 0.005s (node1's heartbeat reached the replica) | lag_seconds=0.005s;30;120",
		},
		{
			"never arrives: the age of the replica's newest, by the primary's clock",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: primary, PrimaryFound: true, Replica: older, ReplicaFound: true, Waited: 5 * time.Second},
			plugin.Warning,
			"PBX_DB_SYNC WARNING - heartbeat lag 115s (warning > 30): node1's heartbeat of 55s ago has not reached the replica within 5s, the newest there is that old | lag_seconds=115s;30;120",
		},
		{
			"a newer row on the replica than read on the primary (written between the reads)",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: older, PrimaryFound: true, Replica: primary, ReplicaFound: true, FirstRead: true},
			plugin.OK,
			"PBX_DB_SYNC OK - heartbeat lag 0s",
		},
		{
			"the replica has no row of that node",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Primary: primary, PrimaryFound: true, Waited: 5 * time.Second},
			plugin.Warning,
			"PBX_DB_SYNC WARNING - heartbeat lag at least 55s (warning > 30) (the replica has no heartbeat row of node1) | lag_seconds=55s;30;120",
		},
		{
			"no heartbeat on the primary",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", Replica: older, ReplicaFound: true},
			plugin.Unknown,
			"PBX_DB_SYNC UNKNOWN - no heartbeat on the primary 198.51.100.1:3306 yet: run check_pbx_db_query there, or give --write-heartbeat | lag_seconds=U;30;120",
		},
		{
			"no --primary-host: local clock, said so",
			HeartbeatObservation{Replica: db.Heartbeat{Node: "node1", Token: "x", TS: t0, Now: t0 + 12*s}, ReplicaFound: true},
			plugin.OK,
			"PBX_DB_SYNC OK - heartbeat lag 12s (age of node1's heartbeat by this server's clock: no --primary-host) | lag_seconds=12s;30;120",
		},
		{
			"primary unreachable: local clock and a warning",
			HeartbeatObservation{PrimaryAddr: "198.51.100.1:3306", PrimaryErr: &db.Error{Step: "connecting to mysql at 198.51.100.1:3306 as pbx", Msg: "connection refused (nothing listens there)"},
				Replica: db.Heartbeat{Node: "node1", Token: "x", TS: t0, Now: t0 + 2*s}, ReplicaFound: true},
			plugin.Warning,
			"PBX_DB_SYNC WARNING - no heartbeat from the primary (connecting to mysql at 198.51.100.1:3306 as pbx: connection refused (nothing listens there)), so heartbeat lag 2s (age of node1's heartbeat by this server's clock: no --primary-host)",
		},
		{
			"no row on the replica, no primary",
			HeartbeatObservation{},
			plugin.Unknown,
			"PBX_DB_SYNC UNKNOWN - no heartbeat row on the replica: run check_pbx_db_query on the primary (or give --primary-host and --write-heartbeat)",
		},
		{
			"table missing on the replica",
			HeartbeatObservation{Table: "pbxha_heartbeat", ReplicaErr: missingTable},
			plugin.Unknown,
			"PBX_DB_SYNC UNKNOWN - heartbeat table pbxha_heartbeat is missing on the replica: create it on the primary (check_pbx_db_query --create) | lag_seconds=U;30;120",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := EvaluateHeartbeat(tc.h, DefaultPolicy())
			first := checkOutput(t, r)
			if r.Overall() != tc.state || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %v %q\nwant %v %q", r.Overall(), first, tc.state, tc.first)
			}
		})
	}
}
