package services

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"pbxha/lib/threshold"
)

const fixture = "testdata/proc"

func readFixture(t *testing.T) ProcList {
	t.Helper()
	list, err := ReadProcs(context.Background(), fixture)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestReadProcs(t *testing.T) {
	list := readFixture(t)
	var pids []int
	byPID := map[int]Proc{}
	for _, p := range list.Procs {
		pids = append(pids, p.PID)
		byPID[p.PID] = p
	}
	want := []int{1, 2, 3, 4, 100, 101, 200, 300, 301, 302, 400, 401, 500, 501, 600, 601, 602, 900}
	if !reflect.DeepEqual(pids, want) {
		t.Errorf("pids %v, want %v", pids, want)
	}
	// 700 and 701 exited while being read: not an error, not a process.
	if list.Vanished != 2 {
		t.Errorf("vanished %d, want 2", list.Vanished)
	}
	if len(list.Unreadable) != 1 || !strings.Contains(list.Unreadable[0].Error(), "testdata/proc/800/stat") {
		t.Errorf("unreadable %v, want the stat of 800", list.Unreadable)
	}
	checks := []struct {
		pid  int
		want Proc
	}{
		{2, Proc{PID: 2, PPID: 0, State: "S", Comm: "kthreadd", Kernel: true}},
		{3, Proc{PID: 3, PPID: 2, State: "I", Comm: "asterisk", Kernel: true}},
		{4, Proc{PID: 4, PPID: 2, State: "S", Comm: "kamailio", Argv: []string{}, Kernel: true}},
		{101, Proc{PID: 101, PPID: 100, State: "Z", Comm: "asterisk"}},
		{100, Proc{PID: 100, PPID: 1, State: "S", Comm: "asterisk", Argv: []string{"/usr/sbin/asterisk", "-f", "-U", "asterisk"}}},
		{900, Proc{PID: 900, PPID: 1, State: "S", Comm: "(sd-pam)", Argv: []string{"(sd-pam)"}}},
	}
	for _, c := range checks {
		if got := byPID[c.pid]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("pid %d: %#v, want %#v", c.pid, got, c.want)
		}
	}
}

func TestReadProcsMissingRoot(t *testing.T) {
	_, err := ReadProcs(context.Background(), "testdata/no-such-proc")
	if err == nil || !strings.Contains(err.Error(), "testdata/no-such-proc") {
		t.Fatalf("err = %v, want one naming the root", err)
	}
}

func svc(process, cmdline string) Service {
	s := Service{Name: "x", Process: process, Count: threshold.MustParse(DefaultCount)}
	if cmdline != "" {
		s.Cmdline = regexp.MustCompile(cmdline)
	}
	return s
}

func TestMatchFixture(t *testing.T) {
	list := readFixture(t)
	none := map[int]bool{}
	tests := []struct {
		name     string
		s        Service
		excluded map[int]bool
		want     []int
	}{
		// Not the kernel thread named asterisk (3), not the zombie (101).
		{"by comm", svc("asterisk", ""), none, []int{100}},
		{"comm and argv[0] agree", svc("mariadbd", ""), none, []int{200}},
		{"forked children count; an empty command line does not", svc("kamailio", ""), none, []int{300, 301, 302}},
		{"name and pattern must both match", svc("kamailio", `-f /etc/kamailio/kamailio\.cfg$`), none, []int{300, 301}},
		{"a name is exact, not a prefix", svc("kamaili", ""), none, nil},
		{"a long name through argv[0]", svc("pbx-long-daemon-name", ""), none, []int{400}},
		{"comm's 15 bytes match both long names", svc("pbx-long-daemon", ""), none, []int{400, 401}},
		{"a script by comm", svc("sipwatch", ""), none, []int{500}},
		{"interpreter by argv[0]", svc("python3", ""), none, []int{500}},
		{"exec -a name by argv[0]", svc("pbxtest-svc", ""), none, []int{501}},
		{"exec -a: comm still matches", svc("sleep", ""), none, []int{501}},
		{"parentheses in comm", svc("(sd-pam)", ""), none, []int{900}},
		{"pattern over the joined argv", svc("", `^/usr/bin/python3 \S*sipwatch --config /etc/sipwatch\.conf$`), none, []int{500}},
		{"pattern, nothing excluded", svc("", `kamailio -f`), none, []int{300, 301, 302, 600, 601, 602}},
		// The check (601) and the shell that ran it (600) carry the pattern
		// in their own command lines; the grep beside it is counted, as
		// check_procs does.
		{"pattern, the check and its parent excluded", svc("", `kamailio -f`), Excluded(list.Procs, 601), []int{300, 301, 302, 602}},
		{"no matcher matches nothing", svc("", ""), none, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.s, list.Procs, tt.excluded); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExcluded(t *testing.T) {
	procs := []Proc{
		{PID: 1, PPID: 0}, {PID: 10, PPID: 1}, {PID: 20, PPID: 10}, {PID: 30, PPID: 20},
		{PID: 40, PPID: 20},
		// A parent loop cannot happen in a real table, but must not hang.
		{PID: 50, PPID: 51}, {PID: 51, PPID: 50},
	}
	tests := []struct {
		self int
		want map[int]bool
	}{
		{30, map[int]bool{30: true, 20: true, 10: true}}, // never PID 1, never a sibling (40)
		{10, map[int]bool{10: true}},
		{99, map[int]bool{99: true}}, // not in the table: only itself
		{50, map[int]bool{50: true, 51: true}},
	}
	for _, tt := range tests {
		if got := Excluded(procs, tt.self); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Excluded(self %d) = %v, want %v", tt.self, got, tt.want)
		}
	}
}
