package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckPing is the plugin of the shipped host check (ITL's hostalive).
const CheckPing = "/usr/lib/nagios/plugins/check_ping"

// twCLIScript stands in for 3ware's tw_cli: it prints the file of out/
// named after its arguments ("info c0" -> out/info.c0), out/ being a
// symlink to a folder of recorded answers (SetIcingaRAID).
const twCLIScript = `#!/bin/sh
d=$(dirname "$0")
f=$(printf '%s' "$*" | tr ' /' '..' | sed 's/^\.//')
if [ -n "$f" ] && [ -f "$d/out/$f" ]; then cat "$d/out/$f"; exit 0; fi
echo "Error: (fake tw_cli) nothing recorded for: $*" >&2
exit 1
`

// IcingaBase is node's Icinga folder in the lab: conf/, plugins/, tw_cli/,
// log/, data/...
func (l *Lab) IcingaBase(node string) string { return filepath.Dir(l.IcingaDataDir(node)) }

// WriteIcingaConf writes node's Icinga 2 configuration as a standalone
// PBX node runs it (the pascom way): repo's icinga-conf/*.conf as shipped
// (not example-hosts.conf), zones.conf.standalone, and a Host for the node
// only, whose checks, event handler and notifications are the programs in
// bin and the node's cluster.toml. Any state a previous run left is
// forgotten (Icinga restores services' states: a HARD CRITICAL left over
// would never fire the handler again). The RAID check reads a fake tw_cli
// whose answers come from the folder twDir (SetIcingaRAID changes it). It
// returns the conf dir for StartIcinga.
func (l *Lab) WriteIcingaConf(node, repo, bin, twDir string) (string, error) {
	h, err := Host(node)
	if err != nil || !isNode(node) {
		return "", fmt.Errorf("icinga conf: %q is not a node", node)
	}
	shipped, err := filepath.Glob(filepath.Join(repo, "icinga-conf", "*.conf"))
	if err != nil || len(shipped) < 5 {
		return "", fmt.Errorf("icinga conf: %s/icinga-conf/*.conf: %d files %v", repo, len(shipped), err)
	}
	zones, err := os.ReadFile(filepath.Join(repo, "icinga-conf", "zones.conf.standalone"))
	if err != nil {
		return "", err
	}
	base := l.IcingaBase(node)
	for _, d := range []string{"data", "log", "conf", "plugins", "tw_cli"} {
		if err := os.RemoveAll(filepath.Join(base, d)); err != nil {
			return "", err
		}
	}
	for _, d := range []string{"conf", "plugins", "log/compat", "tw_cli"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return "", err
		}
	}
	// PluginDir: the built plugins, and check_ping for the shipped host
	// check (hostalive), as /usr/lib/nagios/plugins holds both on an
	// installed node.
	plugins, _ := filepath.Glob(filepath.Join(bin, "check_pbx_*"))
	if len(plugins) == 0 {
		return "", fmt.Errorf("icinga conf: no check_pbx_* in %s", bin)
	}
	for _, p := range append(plugins, CheckPing) {
		if err := os.Symlink(p, filepath.Join(base, "plugins", filepath.Base(p))); err != nil {
			return "", err
		}
	}
	tw := filepath.Join(base, "tw_cli", "tw_cli")
	if err := os.WriteFile(tw, []byte(twCLIScript), 0o755); err != nil {
		return "", err
	}
	if err := l.SetIcingaRAID(node, twDir); err != nil {
		return "", err
	}
	hosts := fmt.Sprintf(`/* Written by the lab: this node's Host only (standalone). */
object Host %q {
	import "pbxha-node"
	address = %q
	vars.pbx_cluster_ip = %q
	vars.pbx_config = %q
	vars.pbxha_eventhandler = %q
	vars.pbxha_notify = %q
	vars.pbx_raid = true
	vars.pbx_raid_source = "3ware"
	vars.pbx_raid_tw_cli = %q
	/* The lab runs both MariaDB and PostgreSQL; a site has one. */
	vars.pbx_db_query_driver = "mysql"
	vars.pbx_db_sync_driver = "mysql"
}
`, node, h.TelIP, h.ClusterIP, l.ConfigPath(node), filepath.Join(bin, "pbxha-eventhandler"),
		filepath.Join(bin, "pbxha-notify"), tw)
	var main strings.Builder
	fmt.Fprintf(&main, "/* Written by the lab for %s. */\n", node)
	fmt.Fprintf(&main, "const PluginDir = %q\n", filepath.Join(base, "plugins"))
	fmt.Fprintf(&main, "const NodeName = %q\nconst ZoneName = NodeName\n", node)
	main.WriteString("include \"zones.conf\"\ninclude <itl>\ninclude <plugins>\n")
	main.WriteString("object CheckerComponent \"checker\" { }\nobject NotificationComponent \"notification\" { }\n")
	// For tests and the demo: state changes, event handler and
	// notification runs (compat log), every service's current state each
	// second (status.dat).
	fmt.Fprintf(&main, "object CompatLogger \"compatlog\" { log_dir = %q }\n", filepath.Join(base, "log", "compat"))
	fmt.Fprintf(&main, "object StatusDataWriter \"status\" { status_path = %q\n\tobjects_path = %q\n\tupdate_interval = 1s\n}\n",
		filepath.Join(base, "status.dat"), filepath.Join(base, "objects.cache"))
	for _, f := range shipped {
		if filepath.Base(f) != "example-hosts.conf" {
			fmt.Fprintf(&main, "include %q\n", f)
		}
	}
	main.WriteString("include \"hosts.conf\"\n")
	for name, text := range map[string]string{"icinga2.conf": main.String(), "zones.conf": string(zones), "hosts.conf": hosts} {
		if err := os.WriteFile(filepath.Join(base, "conf", name), []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	_ = os.Remove(filepath.Join(base, "status.dat"))
	return filepath.Join(base, "conf"), nil
}

// SetIcingaRAID points node's fake tw_cli at the recorded answers in dir,
// atomically.
func (l *Lab) SetIcingaRAID(node, dir string) error {
	src, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	d := filepath.Join(l.IcingaBase(node), "tw_cli")
	tmp := filepath.Join(d, "out.new")
	_ = os.Remove(tmp)
	if err := os.Symlink(src, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d, "out"))
}
