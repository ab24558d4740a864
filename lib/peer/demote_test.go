package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

func TestDemote(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(statePath, cluster.State{Node: "node1", Role: cluster.Master, Epoch: 4}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Node: "node1", StateFile: statePath,
		Nodes: []config.Node{{Name: "node1"}, {Name: "node2"}},
		VIP:   config.VIP{Address: "192.0.2.10/24", Interface: "tel0"},
		Services: []config.Service{
			{Name: "kamailio", Stop: []string{"stop-kamailio"}},
			{Name: "ami", Stop: []string{"stop-ami"}},
		},
	}
	var released []string
	var ran []string
	demoteDelVIP = func(iface string, p netip.Prefix) error {
		released = append(released, iface+" "+p.String())
		return nil
	}
	demoteRun = func(_ context.Context, argv []string) error {
		ran = append(ran, argv[0])
		if argv[0] == "stop-ami" {
			return errors.New("exit status 1")
		}
		return nil
	}
	t.Cleanup(func() { demoteDelVIP, demoteRun = cluster.DelVIP, runBounded })

	for i := range 2 { // a second demote is harmless
		var out bytes.Buffer
		code := (&Server{Config: cfg}).Serve(context.Background(), []string{"demote"}, &out)
		var r DemoteReply
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || code != ExitOK {
			t.Fatalf("run %d: exit %d %q", i, code, out.String())
		}
		if r.Node != "node1" || r.Role != cluster.Standby || r.Epoch != 4 || !r.VIPReleased ||
			len(r.Stopped) != 1 || r.Stopped[0] != "kamailio" || len(r.Failed) != 1 {
			t.Fatalf("run %d: reply %+v", i, r)
		}
	}
	st, err := cluster.ReadState(statePath)
	if err != nil || st.Role != cluster.Standby || st.Epoch != 4 {
		t.Fatalf("state %+v %v; want standby epoch 4 kept", st, err)
	}
	if len(released) != 2 || released[0] != "tel0 192.0.2.10/24" || len(ran) != 4 {
		t.Fatalf("released %v, ran %v", released, ran)
	}
	// The grammar takes no argument.
	var out bytes.Buffer
	if code := (&Server{Config: cfg}).Serve(context.Background(), []string{"demote", "now"}, &out); code != ExitUsage {
		t.Fatalf("demote now: exit %d %s", code, out.String())
	}
}
