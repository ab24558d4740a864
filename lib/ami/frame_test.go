package ami

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestGreeting(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		wantErr  string // substring; "" for none
		err      error  // errors.Is target
		pending  int
	}{
		{"asterisk 20", "Asterisk Call Manager/9.0.0\r\nResponse: x", "Asterisk Call Manager/9.0.0", "", nil, 0},
		{"bare LF", "Asterisk Call Manager/2.10.6\n", "Asterisk Call Manager/2.10.6", "", nil, 0},
		{"http", "HTTP/1.1 400 Bad Request\r\n", "", `not an Asterisk manager greeting: "HTTP/1.1 400 Bad Request"`, nil, 0},
		{"a proxy's greeting", "Asterisk Call Manager Proxy/1.22\r\n", "", `greeting: "Asterisk Call Manager Proxy/1.22"`, nil, 0},
		{"prefix alone, no line end", "Asterisk Call Manager/", "", `greeting: "Asterisk Call Manager/"`, nil, 0},
		{"nothing", "", "", "", io.EOF, 0},
		{"too long", GreetingPrefix + strings.Repeat("9", 2000), "", "...", nil, 0},
		{"lowercase", "asterisk call manager/9.0.0\r\n", "", `greeting: "asterisk call manager/9.0.0"`, nil, 0},
	}
	for _, tc := range tests {
		for _, split := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if split {
				r = iotest.OneByteReader(r)
			}
			fr := newFrameReader(r)
			got, err := fr.greeting()
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
				}
			case tc.wantErr != "":
				want := tc.wantErr
				if split {
					// Byte by byte, the error shows only what had arrived
					// when the first foreign byte did.
					want = "greeting: \""
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s (split %v): err %v, want %q", tc.name, split, err, tc.wantErr)
				}
			case err != nil || got != tc.want:
				t.Errorf("%s (split %v): %q, %v", tc.name, split, got, err)
			}
		}
	}
}

func TestGreetingFailsAtFirstForeignByte(t *testing.T) {
	// The reader must not wait for more than it needs: after "AsX" no
	// Asterisk greeting is possible. A reader that errors after those
	// bytes proves nothing more was asked for.
	fr := newFrameReader(io.MultiReader(strings.NewReader("AsX"), iotest.ErrReader(errors.New("read past the proof"))))
	_, err := fr.greeting()
	var ge *GreetingError
	if !errors.As(err, &ge) || ge.Got != "AsX" {
		t.Fatalf("got %v", err)
	}
}

func TestFrames(t *testing.T) {
	long := strings.Repeat("v", maxLine+500)
	tests := []struct {
		name    string
		in      string
		want    [][]string
		cut     []bool
		lastErr error
	}{
		{"two messages", "Response: Success\r\nActionID: 1\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n",
			[][]string{{"Response: Success", "ActionID: 1"}, {"Event: FullyBooted", "Status: Fully Booted"}}, []bool{false, false}, io.EOF},
		{"blank lines between", "\r\n\r\nA: 1\r\n\r\n\r\nB: 2\n\n",
			[][]string{{"A: 1"}, {"B: 2"}}, []bool{false, false}, io.EOF},
		{"lone CR is data", "A: 1\r\r\n\r\n", [][]string{{"A: 1\r"}}, []bool{false}, io.EOF},
		{"end mid-message", "A: 1\r\nB: 2\r\n", nil, nil, io.ErrUnexpectedEOF},
		{"end mid-line", "A: 1", nil, nil, io.ErrUnexpectedEOF},
		{"long line cut, framing kept", "Value: " + long + "\r\nNext: 1\r\n\r\nC: 3\r\n\r\n",
			[][]string{{("Value: " + long)[:maxLine], "Next: 1"}, {"C: 3"}}, []bool{true, false}, io.EOF},
	}
	for _, tc := range tests {
		for _, split := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if split {
				r = iotest.OneByteReader(r)
			}
			fr := newFrameReader(r)
			var got [][]string
			var cut []bool
			var err error
			for {
				var f frame
				if f, err = fr.frame(); err != nil {
					break
				}
				got = append(got, f.lines)
				cut = append(cut, f.cut)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(cut, tc.cut) || !errors.Is(err, tc.lastErr) {
				t.Errorf("%s (split %v): got %q cut %v err %v", tc.name, split, got, cut, err)
			}
		}
	}
}

func TestTooManyLines(t *testing.T) {
	in := strings.Repeat("H: v\r\n", maxLines+5) + "\r\nNext: 1\r\n\r\n"
	fr := newFrameReader(strings.NewReader(in))
	f, err := fr.frame()
	if err != nil || len(f.lines) != maxLines || !f.cut {
		t.Fatalf("%d lines, cut %v, %v", len(f.lines), f.cut, err)
	}
	if f, err := fr.frame(); err != nil || f.lines[0] != "Next: 1" {
		t.Fatalf("framing lost: %q %v", f.lines, err)
	}
}

func TestPendingCountsAnUnfinishedMessage(t *testing.T) {
	fr := newFrameReader(strings.NewReader("Event: X\r\n\r\nResponse: Succ"))
	if _, err := fr.frame(); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.frame(); !errors.Is(err, io.ErrUnexpectedEOF) || fr.pending != len("Response: Succ") {
		t.Fatalf("err %v, pending %d", err, fr.pending)
	}
}
