package services

import (
	"reflect"
	"strings"
	"testing"

	"pbxha/lib/config"
)

func TestParseAssign(t *testing.T) {
	tests := []struct {
		in          string
		name, value string
		err         string
	}{
		{in: "asterisk=1:", name: "asterisk", value: "1:"},
		{in: "kam=^/usr/sbin/kamailio -f (a|b)=c", name: "kam", value: "^/usr/sbin/kamailio -f (a|b)=c"},
		{in: "getty@tty1=2", name: "getty@tty1", value: "2"},
		{in: "asterisk", err: `"asterisk" is not NAME=VALUE`},
		{in: "=1:", err: "empty service name"},
		{in: "asterisk=", err: "empty value"},
		{in: " asterisk=1", err: "use letters, digits"},
		{in: "a|b=1", err: "use letters, digits"},
		{in: "-x=1", err: "use letters, digits"},
		{in: strings.Repeat("a", 65) + "=1", err: "longer than 64"},
	}
	for _, tt := range tests {
		name, value, err := ParseAssign(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAssign(%q) = %q, %q, %v; want error with %q", tt.in, name, value, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || value != tt.value {
			t.Errorf("ParseAssign(%q) = %q, %q, %v; want %q, %q", tt.in, name, value, err, tt.name, tt.value)
		}
	}
}

func TestNormalizeUnit(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "asterisk", want: "asterisk.service"},
		{in: "asterisk.service", want: "asterisk.service"},
		{in: "kamailio.socket", want: "kamailio.socket"},
		{in: "getty@tty1", want: "getty@tty1.service"},
		{in: "mysql.server", want: "mysql.server.service"},
		{in: ".service", err: "not a systemd unit name"},
		{in: "a b", err: "not a systemd unit name"},
		{in: "", err: "not a systemd unit name"},
		{in: strings.Repeat("a", 250), err: "longer than 255"},
	}
	for _, tt := range tests {
		got, err := NormalizeUnit(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeUnit(%q) = %q, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeUnit(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// flat is a Service in comparable form.
type flat struct{ Name, Unit, Process, Cmdline, Count string }

func flatten(svcs []Service) []flat {
	var out []flat
	for _, s := range svcs {
		f := flat{Name: s.Name, Unit: s.Unit, Process: s.Process, Count: s.Count.String()}
		if s.Cmdline != nil {
			f.Cmdline = s.Cmdline.String()
		}
		out = append(out, f)
	}
	return out
}

func TestFromFlags(t *testing.T) {
	tests := []struct {
		name string
		args FlagArgs
		want []flat
		err  string
	}{
		{name: "nothing", args: FlagArgs{}},
		{
			name: "-s is process NAME and unit NAME.service, count 1:",
			args: FlagArgs{Service: []string{"asterisk", "kamailio"}},
			want: []flat{
				{"asterisk", "asterisk.service", "asterisk", "", "1:"},
				{"kamailio", "kamailio.service", "kamailio", "", "1:"},
			},
		},
		{
			name: "overrides, in the order first named",
			args: FlagArgs{
				Service: []string{"asterisk"},
				Process: []string{"mariadb=mariadbd", "asterisk=asterisk-bin"},
				Unit:    []string{"mariadb=mariadb", "asterisk=pbx.target"},
				Cmdline: []string{"kamailio=kamailio -f /etc/kamailio/kamailio\\.cfg"},
				Count:   []string{"kamailio=2:", "asterisk=1:1"},
			},
			want: []flat{
				{"asterisk", "pbx.target", "asterisk-bin", "", "1:1"},
				{"mariadb", "mariadb.service", "mariadbd", "", "1:"},
				{"kamailio", "kamailio.service", "", `kamailio -f /etc/kamailio/kamailio\.cfg`, "2:"},
			},
		},
		{
			name: "-s and --cmdline together: both must match",
			args: FlagArgs{Service: []string{"kamailio"}, Cmdline: []string{"kamailio=-f /etc/k.cfg"}},
			want: []flat{{"kamailio", "kamailio.service", "kamailio", "-f /etc/k.cfg", "1:"}},
		},
		{name: "-s NAME=UNIT", args: FlagArgs{Service: []string{"asterisk=asterisk.service"}}, err: "flag --service: \"asterisk=asterisk.service\": -s takes a bare NAME"},
		{name: "-s empty", args: FlagArgs{Service: []string{""}}, err: "flag --service: empty service name"},
		{name: "-s twice", args: FlagArgs{Service: []string{"a", "a"}}, err: `flag --service: service "a" given twice`},
		{name: "--count twice", args: FlagArgs{Service: []string{"a"}, Count: []string{"a=1", "a=2"}}, err: `flag --count: service "a" given twice`},
		{name: "bad regex", args: FlagArgs{Cmdline: []string{"kam=kamailio (-f"}}, err: "flag --cmdline: \"kam=kamailio (-f\": error parsing regexp: missing closing )"},
		{name: "regex without name", args: FlagArgs{Cmdline: []string{"kamailio"}}, err: `flag --cmdline: "kamailio" is not NAME=VALUE`},
		{name: "bad range", args: FlagArgs{Service: []string{"a"}, Count: []string{"a=one"}}, err: "flag --count: \"a=one\": range \"one\": end \"one\" is not a number"},
		{name: "backwards range", args: FlagArgs{Service: []string{"a"}, Count: []string{"a=2:1"}}, err: "flag --count: \"a=2:1\": range \"2:1\": start 2 is greater than end 1"},
		{name: "count for a typo", args: FlagArgs{Service: []string{"asterisk"}, Count: []string{"astrisk=1:"}}, err: `flag --count: "astrisk=1:": no service "astrisk"`},
		{name: "process with a path", args: FlagArgs{Process: []string{"a=/usr/sbin/asterisk"}}, err: "flag --process: \"a=/usr/sbin/asterisk\": a process name has no '/'"},
		{name: "bad unit", args: FlagArgs{Unit: []string{"a=a b"}}, err: "flag --unit: \"a b\" is not a systemd unit name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromFlags(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f := flatten(got); !reflect.DeepEqual(f, tt.want) {
				t.Errorf("got %+v\nwant %+v", f, tt.want)
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []flat
		err  string
	}{
		{
			name: "unit only where set; count defaults to 1:",
			toml: `
[[services]]
name = "asterisk"
unit = "asterisk"
process = "asterisk"
count = "1:1"

[[services]]
name = "mariadb"
process = "mariadbd"

[[services]]
name = "kamailio"
cmdline = "^/usr/sbin/kamailio "
count = "2:"
`,
			want: []flat{
				{"asterisk", "asterisk.service", "asterisk", "", "1:1"},
				{"mariadb", "", "mariadbd", "", "1:"},
				{"kamailio", "", "", "^/usr/sbin/kamailio ", "2:"},
			},
		},
		{name: "bad regex", toml: "[[services]]\nname = \"k\"\ncmdline = \"(\"\n", err: "c.toml: services[0].cmdline: \"(\": error parsing regexp"},
		{name: "bad count", toml: "[[services]]\nname = \"k\"\nprocess = \"k\"\ncount = \"x\"\n", err: "c.toml: services[0].count: range \"x\""},
		{name: "bad name", toml: "[[services]]\nname = \"my pbx\"\nprocess = \"k\"\n", err: "c.toml: services[0].name: service name \"my pbx\""},
		{name: "twice", toml: "[[services]]\nname = \"k\"\nprocess = \"k\"\n[[services]]\nname = \"k\"\nprocess = \"j\"\n", err: "c.toml: services[1].name: \"k\" appears twice"},
		{name: "process path", toml: "[[services]]\nname = \"k\"\nprocess = \"/usr/sbin/k\"\n", err: "c.toml: services[0].process: \"/usr/sbin/k\": a process name has no '/'"},
		{name: "bad unit", toml: "[[services]]\nname = \"k\"\nunit = \"k k\"\n", err: "c.toml: services[0].unit: \"k k\" is not a systemd unit name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.toml), "c.toml")
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromConfig(cfg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f := flatten(got); !reflect.DeepEqual(f, tt.want) {
				t.Errorf("got %+v\nwant %+v", f, tt.want)
			}
		})
	}
}
