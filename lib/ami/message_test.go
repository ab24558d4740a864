package ami

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/staskobzar/goami2"
)

func msg(t *testing.T, text string) *goami2.Message {
	t.Helper()
	f, err := newFrameReader(strings.NewReader(text)).frame()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseFrame(t *testing.T) {
	m := msg(t, "Response: Success\r\nActionID: a-1\r\nAccountCode: \r\nMessage: Authentication accepted\r\n\r\n")
	if m.ActionID() != "a-1" || m.Field("message") != "Authentication accepted" || m.Field("AccountCode") != "" || m.Len() != 4 {
		t.Fatalf("%q", m.String())
	}
	for _, bad := range []string{"Response Success\r\n\r\n", "X: one-letter name\r\n\r\n", "Response: Success\r\nno colon here\r\n\r\n"} {
		f, _ := newFrameReader(strings.NewReader(bad)).frame()
		_, err := parseFrame(f)
		var me *MalformedError
		if !errors.As(err, &me) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestCheckResponse(t *testing.T) {
	tests := []struct {
		action, text string
		want         string // "" for success
	}{
		{"Ping", "Response: Success\r\nPing: Pong\r\n\r\n", ""},
		{"Ping", "Response: Pong\r\n\r\n", ""},
		{"CoreStatus", "Response: Pong\r\n\r\n", `CoreStatus answered "Pong"`},
		{"CoreStatus", "Response: Error\r\nMessage: Permission denied\r\n\r\n", `CoreStatus answered "Error": Permission denied`},
		{"Ping", "ActionID: 1\r\n\r\n", "Ping answered without a Response header"},
	}
	for _, tc := range tests {
		err := checkResponse(tc.action, msg(t, tc.text))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s %q: %v, want %q", tc.action, tc.text, err, tc.want)
		}
	}
}

func TestParsePong(t *testing.T) {
	tests := []struct {
		ts   string
		want time.Time
	}{
		{"1700000000.123456", time.Unix(1700000000, 123456000)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.5", time.Unix(1700000000, 500000000)},
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789)},
		{"", time.Time{}},
		{"-5.0", time.Time{}},
		{"soon", time.Time{}},
		{"1700000000.-1", time.Time{}},
		{"99999999999999999999", time.Time{}},
	}
	for _, tc := range tests {
		got := ParsePong(msg(t, "Response: Success\r\nPing: Pong\r\nTimestamp: "+tc.ts+"\r\n\r\n")).Timestamp
		if !got.Equal(tc.want) {
			t.Errorf("%q: %v, want %v", tc.ts, got, tc.want)
		}
	}
}

func TestParseCoreStatus(t *testing.T) {
	loc := time.FixedZone("PBX", 3600)
	full := "Response: Success\r\nActionID: 1\r\nCoreStartupDate: 2024-03-01\r\nCoreStartupTime: 08:00:00\r\n" +
		"CoreReloadDate: 2024-03-02\r\nCoreReloadTime: 09:30:15\r\nCoreCurrentCalls: 7\r\nCoreProcessedCalls: 1234\r\n\r\n"
	cs, err := ParseCoreStatus(msg(t, full), loc)
	if err != nil || cs.CurrentCalls != 7 || cs.ProcessedCalls != 1234 ||
		!cs.Startup.Equal(time.Date(2024, 3, 1, 7, 0, 0, 0, time.UTC)) || !cs.Reload.Equal(time.Date(2024, 3, 2, 9, 30, 15, 0, loc)) {
		t.Fatalf("%+v %v", cs, err)
	}
	// Asterisk 1.8 had no CoreProcessedCalls; odd dates give no time.
	cs, err = ParseCoreStatus(msg(t, "Response: Success\r\nCoreStartupDate: 2024-13-01\r\nCoreStartupTime: 08:00\r\nCoreCurrentCalls: 0\r\n\r\n"), loc)
	if err != nil || cs.ProcessedCalls != -1 || !cs.Startup.IsZero() || !cs.Reload.IsZero() {
		t.Fatalf("%+v %v", cs, err)
	}
	for _, bad := range []string{"", "CoreCurrentCalls: -1\r\n", "CoreCurrentCalls: 3.5\r\n", "CoreCurrentCalls: many\r\n"} {
		if _, err := ParseCoreStatus(msg(t, "Response: Success\r\n"+bad+"\r\n"), loc); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
