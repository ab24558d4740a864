package ami

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll returns every complete request in data, in order.
func readAll(t testing.TB, r io.Reader) []request {
	t.Helper()
	rr := newRequestReader(r)
	var out []request
	for {
		req, err := rr.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("next: %v", err)
			}
			return out
		}
		out = append(out, req)
		if req.LineTooLong {
			rr.clearTooLong()
		}
	}
}

func TestRequestReader(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	many := strings.Repeat("H: v\r\n", maxHeaders+1) + "\r\n"
	manyWant := make([]string, maxHeaders)
	for i := range manyWant {
		manyWant[i] = "H: v"
	}
	tests := []struct {
		name string
		in   string
		want []request
	}{
		{"crlf", "Action: Ping\r\nActionID: 1\r\n\r\n",
			[]request{{Headers: []string{"Action: Ping", "ActionID: 1"}}}},
		{"bare lf also ends lines", "Action: Ping\nActionID: 1\n\n",
			[]request{{Headers: []string{"Action: Ping", "ActionID: 1"}}}},
		{"lone cr is data", "Action: Ping\r\r\n\r\n",
			[]request{{Headers: []string{"Action: Ping\r"}}}},
		{"empty line alone is an empty request", "\r\n\r\n",
			[]request{{}, {}}},
		{"incomplete request is not returned", "Action: Ping\r\n", nil},
		{"two requests", "A: 1\r\n\r\nB: 2\r\n\r\n",
			[]request{{Headers: []string{"A: 1"}}, {Headers: []string{"B: 2"}}}},
		{"nul cuts the line", "Action: Ping\x00junk\r\nB: 2\r\n\r\n",
			[]request{{Headers: []string{"Action: Ping", "B: 2"}}}},
		{"line starting with nul ends the request", "Action: Ping\r\n\x00junk\r\nB: 2\r\n\r\n",
			[]request{{Headers: []string{"Action: Ping"}}, {Headers: []string{"B: 2"}}}},
		{"1022 bytes and crlf fit", long(1022) + "\r\n\r\n",
			[]request{{Headers: []string{long(1022)}}}},
		{"1023 bytes and lf fit", long(1023) + "\n\n",
			[]request{{Headers: []string{long(1023)}}}},
		// get_input() keeps the last byte of a full buffer: here the \r,
		// which with the following \n makes an empty line that ends the
		// request early; the real empty line then is a second request.
		{"1023 bytes and crlf overflow", long(1023) + "\r\n\r\n",
			[]request{{LineTooLong: true}, {}}},
		{"overflow keeps the last byte", "A: 1\r\n" + long(1030) + "\r\n\r\n",
			[]request{{Headers: []string{"A: 1", long(7)}, LineTooLong: true}}},
		{"too many headers", many, []request{{Headers: manyWant, TooManyHeaders: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.in)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tc.in))},
			} {
				got := readAll(t, r.r)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: got %#v, want %#v", r.name, got, tc.want)
				}
			}
		})
	}
}

func TestRequestHeaderLookup(t *testing.T) {
	req := request{Headers: []string{
		"Action:",
		"action: Ping",
		"ActionID :1",
		"ActionID:\t  id 7 ",
		"Secret: \x01x",
		"\u212aey: kelvin",
	}}
	tests := []struct {
		name      string
		skipEmpty bool
		want      string
	}{
		{"Action", false, ""},        // first match, even if empty
		{"Action", true, "Ping"},     // process_message() skips the empty one
		{"ACTIONID", false, "id 7 "}, // no blank before ':'; trailing blanks kept
		{"Secret", false, "x"},       // ast_skip_blanks skips every byte < 33
		{"Key", false, ""},           // no Unicode case folding
		{"Missing", false, ""},
	}
	for _, tc := range tests {
		if got := req.header(tc.name, tc.skipEmpty); got != tc.want {
			t.Errorf("header(%q, %v) = %q, want %q", tc.name, tc.skipEmpty, got, tc.want)
		}
	}
}

func TestStringsToMask(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", -1},
		{"off", 0},
		{"No", 0},
		{"0", 0},
		{"5", 5},
		{"on", allPerms},
		{"system", 1},
		{"system,call", 3},
		{"sys,call", 3},            // ast_instring prefix quirk
		{"call,sys", 2},            // ... which the last token does not get
		{"call,", 2},               // a token before a comma still counts
		{"dialplan,all", allPerms}, // "all" is INT_MAX
	}
	for _, tc := range tests {
		if got := stringsToMask(tc.in); got != tc.want {
			t.Errorf("stringsToMask(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestAuthorityToStr(t *testing.T) {
	tests := map[int]string{
		1:        "system,all",
		2:        "call,all",
		1 << 11:  "dialplan,all",
		1 | 1<<9: "system,reporting,all",
		0:        "<none>",
	}
	for in, want := range tests {
		if got := authorityToStr(in); got != want {
			t.Errorf("authorityToStr(%d) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRequestReader feeds client bytes to the request parser: it must not
// panic, must honour Asterisk's limits, and must cut the same requests
// whatever the read sizes.
func FuzzRequestReader(f *testing.F) {
	for _, seed := range []string{
		"Action: Login\r\nUsername: admin\r\nSecret: s\r\n\r\n",
		"action: ping\nactionid: 1\n\n",
		"\r\n\r\n\r",
		"A\x00B\r\n\x00\r\n",
		strings.Repeat("y", 1023) + "\r\n\r\n",
		strings.Repeat("H: v\r\n", 130) + "\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := readAll(t, bytes.NewReader(data))
		bytewise := readAll(t, iotest.OneByteReader(bytes.NewReader(data)))
		if !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("read sizes change the result:\nwhole    %#v\nbytewise %#v", whole, bytewise)
		}
		for _, req := range whole {
			if len(req.Headers) > maxHeaders {
				t.Fatalf("%d headers kept", len(req.Headers))
			}
			for _, h := range req.Headers {
				if h == "" || len(h) >= maxLineLen || strings.ContainsAny(h, "\n\x00") {
					t.Fatalf("bad header %q", h)
				}
			}
			req.get("ActionID")
			req.getNonEmpty("Action")
		}
	})
}
