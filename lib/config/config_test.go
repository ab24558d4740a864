package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	c, err := Load("testdata/cluster.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Self() == nil || c.Self().Name != "node1" || c.Peer().Name != "node2" {
		t.Fatalf("self/peer wrong: %+v %+v", c.Self(), c.Peer())
	}
	if c.Peer().ClusterIP != "198.51.100.2" || c.VIP.Address != "192.0.2.10/24" {
		t.Fatalf("addresses wrong: %+v", c)
	}
	if c.SSH.ConnectTimeout.Duration != 2*time.Second || c.SSH.Port != 22 || c.MySQL.Port != 3306 {
		t.Fatalf("defaults/durations wrong: %+v %+v", c.SSH, c.MySQL)
	}
	if !c.IsFailoverService("pbx_cluster") || c.IsFailoverService("pbx_sip") {
		t.Fatal("failover services wrong")
	}
	if c.Services[0].Count != "1:" {
		t.Fatalf("service count default: %q", c.Services[0].Count)
	}
	if v, err := c.PgSQL.Password.Value(); err != nil || v != "inline-secret" {
		t.Fatalf("inline secret: %q %v", v, err)
	}
	t.Setenv("PBXHA_AMI_SECRET", "from-env")
	if v, err := c.AMI.Secret.Value(); err != nil || v != "from-env" {
		t.Fatalf("env secret: %q %v", v, err)
	}
	if c.Notify.IcingaWeb2URL != "https://monitor.example.net/icingaweb2" {
		t.Fatalf("notify.icingaweb2_url: %q", c.Notify.IcingaWeb2URL)
	}
	if c.MySQL.Password.File != "/etc/pbxha/mysql.pw" {
		t.Fatalf("file secret: %+v", c.MySQL.Password)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := Load("testdata/cluster.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c.PgSQL.Password), fmt.Sprintf("%v %+v %#v", c.PgSQL, c.PgSQL, c.PgSQL.Password)} {
		if strings.Contains(s, "inline-secret") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
}

func TestSecretFileAndErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("s3cret\nignored\n"), 0o600)
	if v, err := FromFile(f).Value(); err != nil || v != "s3cret" {
		t.Fatalf("file secret: %q %v", v, err)
	}
	_, err := FromFile(filepath.Join(dir, "nope")).Value()
	if err == nil || !strings.Contains(err.Error(), "reading secret file") {
		t.Fatalf("missing file error: %v", err)
	}
	os.Unsetenv("PBXHA_TEST_UNSET")
	_, err = FromEnv("PBXHA_TEST_UNSET").Value()
	if err == nil || !strings.Contains(err.Error(), "PBXHA_TEST_UNSET") {
		t.Fatalf("unset env error: %v", err)
	}
}

func TestValidationNamesKeyAndFile(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"one node", "[[nodes]]\nname=\"a\"\n", "nodes: a cluster has exactly two nodes"},
		{"bad ip", "[[nodes]]\nname=\"a\"\ntelephony_ip=\"1.2.3\"\n[[nodes]]\nname=\"b\"\n", "nodes[0].telephony_ip: \"1.2.3\" is not an IP"},
		{"dup", "[[nodes]]\nname=\"a\"\n[[nodes]]\nname=\"a\"\n", "nodes[1].name: \"a\" appears twice"},
		{"vip", "[vip]\naddress=\"192.0.2.10\"\n", "vip.address"},
		{"unknown key", "colour = \"red\"\n", "unknown key colour"},
		{"syntax", "cluster_id = \n", "line 1"},
		{"duration", "[ssh]\nconnect_timeout = \"soon\"\n", "not a duration"},
		{"service", "[[services]]\nname=\"x\"\n", "services[0]: service \"x\" needs unit, process or cmdline"},
		{"tls", "[smtp]\ntls=\"maybe\"\n", "smtp.tls"},
		{"notify url", "[notify]\nicingaweb2_url=\"monitor.example.net\"\n", "notify.icingaweb2_url"},
		{"unfence alone", "[failover]\nunfence_command=[\"up\"]\n", "failover.unfence_command: set without failover.fence_command"},
		{"fence program", "[failover]\nfence_command=[\"\", \"off\"]\n", "failover.fence_command: the first word is the program and is empty"},
		{"fence timeout", "[failover]\nfence_command=[\"f\"]\nfence_timeout=\"-1s\"\n", "failover.fence_timeout: negative"},
		{"secret table", "[ami]\nsecret = { path = \"x\" }\n", "unknown key \"path\""},
		{"self", "node=\"c\"\n[[nodes]]\nname=\"a\"\n[[nodes]]\nname=\"b\"\n", "node: \"c\" is not one of the nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "/etc/pbxha/x.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/etc/pbxha/x.toml") {
				t.Fatalf("error %v, want it to contain %q and the file name", err, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	t.Setenv("PBXHA_CONFIG", "")
	missing := filepath.Join(t.TempDir(), "none.toml")
	if c, err := Load(missing, false); c != nil || err != nil {
		t.Fatalf("implicit missing file: %v %v", c, err)
	}
	if _, err := Load(missing, true); err == nil {
		t.Fatal("explicit missing file must be an error")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	c, err := Load("testdata/cluster.toml", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b, "roundtrip")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if c2.MySQL.Password.File != c.MySQL.Password.File || c2.AMI.Secret.Env != "PBXHA_AMI_SECRET" || c2.Nodes[1] != c.Nodes[1] {
		t.Fatalf("round trip lost data:\n%s", b)
	}
	if c2.Notify != c.Notify {
		t.Fatalf("round trip lost [notify]:\n%s", b)
	}
	// An empty [notify] is left out, so binaries older than it read the file.
	c2.Notify = Notify{}
	if b2, _ := Encode(c2); strings.Contains(string(b2), "notify") {
		t.Fatalf("an empty [notify] was written:\n%s", b2)
	}
	if v, _ := c2.PgSQL.Password.Value(); v != "inline-secret" {
		t.Fatal("inline secret lost in round trip")
	}
}
