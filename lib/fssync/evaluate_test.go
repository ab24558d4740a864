package fssync

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestEvaluate(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	def := Policy{Age: agePair(DefaultAgeWarning, DefaultAgeCritical), Now: now}
	for _, tc := range []struct {
		name  string
		dirs  []DirResult
		p     Policy
		state plugin.State
		first string
		long  string
	}{
		{"in sync", []DirResult{{Dir: "/srv/sync", Diff: Diff{Local: 12}}}, def, plugin.OK,
			"PBX_FS_SYNC OK - /srv/sync: in sync (12 entries) | sync_missing=0;;;0 sync_extra=0;;;0 sync_different=0;;;0 sync_oldest_unsynced_age=0s;900;3600;0", ""},
		{"one missing, fresh", []DirResult{{Dir: "/srv/sync", Diff: Diff{Missing: 1, Oldest: ago(2 * time.Minute), HasOldest: true,
			List: []Difference{{Path: "new.wav", Kind: Missing}}}}}, def, plugin.OK,
			"PBX_FS_SYNC OK - /srv/sync: 1 missing on the peer, 0 extra on the peer, 0 different; oldest unsynced change 2m0s ago | sync_missing=1;;;0 sync_extra=0;;;0 sync_different=0;;;0 sync_oldest_unsynced_age=120s;900;3600;0",
			"missing: new.wav"},
		{"one different, 2 h old", []DirResult{{Dir: "/srv/sync", Diff: Diff{Different: 1, Oldest: ago(2 * time.Hour), HasOldest: true,
			List: []Difference{{Path: "x", Kind: Different, What: "size 1 != 2"}}}}}, def, plugin.Critical,
			"PBX_FS_SYNC CRITICAL - /srv/sync: 0 missing on the peer, 0 extra on the peer, 1 different; oldest unsynced change 2h0m0s ago (critical > 3600)",
			"different: x (size 1 != 2)"},
		{"count threshold on extras", []DirResult{{Dir: "/srv/sync", Diff: Diff{Extra: 5, List: []Difference{{Path: "a", Kind: Extra}}}}},
			Policy{Count: threshold.Pairf("3", "10"), Age: def.Age, Now: now}, plugin.Warning,
			"PBX_FS_SYNC WARNING - /srv/sync: 0 missing on the peer, 5 extra on the peer, 0 different (warning > 3) | sync_missing=0;3;10;0",
			"extra: a\n... and 4 more"},
		{"a directory that could not be compared", []DirResult{{Dir: "/a/sounds", Diff: Diff{Local: 1}}, {Dir: "/b/voicemail", Err: errors.New("peer command manifest: no\nsync dir 1")}}, def, plugin.Unknown,
			"PBX_FS_SYNC UNKNOWN - /b/voicemail: peer command manifest: no sync dir 1", "voicemail_missing=U"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.dirs, tc.p)
			out := r.Format("PBX_FS_SYNC")
			first, _, _ := strings.Cut(out, "\n")
			if r.Overall() != tc.state || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("state %v, first %q\nwant %v, %q", r.Overall(), first, tc.state, tc.first)
			}
			if !strings.Contains(out, tc.long) {
				t.Fatalf("output lacks %q:\n%s", tc.long, out)
			}
		})
	}
}
