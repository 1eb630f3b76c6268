package broker

import (
	"bytes"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		c    control
	}{
		{"heartbeat", control{Type: controlHeartbeat}},
		{"hello", control{Type: controlHeartbeat, Flags: heartbeatHello}},
		{"bye", control{Type: controlHeartbeat, Flags: heartbeatBye}},
		{"request", control{Type: controlRequest, ID: 1, Kind: "fallback.send", Payload: []byte(`{"a":1}`)}},
		{"request without payload", control{Type: controlRequest, ID: 1 << 40, Kind: "k"}},
		{"request without kind", control{Type: controlRequest, ID: 7}},
		{"reply", control{Type: controlReply, ID: 300, Payload: []byte{0, 1, 2}}},
		{"error", control{Type: controlError, ID: 2, Payload: []byte("no handler")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := appendControl([]byte("junk"), c.c)[4:]
			got, err := parseControl(b)
			if err != nil {
				t.Fatalf("parse(%q): %v", b, err)
			}
			if got.Type != c.c.Type || got.Flags != c.c.Flags || got.ID != c.c.ID || got.Kind != c.c.Kind || !bytes.Equal(got.Payload, c.c.Payload) {
				t.Errorf("parse(append(%+v)) = %+v", c.c, got)
			}
		})
	}
}

func TestControlMalformed(t *testing.T) {
	for _, b := range []string{
		"", "h", "x\x01\x00", "h\x09", "h\x01", "h\x01\x00\x00", "h\x02", "h\x02\x01",
		"h\x02\x01\x05abc", "h\x02\x01\xff\x01", "h\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
	} {
		if c, err := parseControl([]byte(b)); err == nil {
			t.Errorf("parse(%q) = %+v, want an error", b, c)
		}
	}
}

// FuzzControl checks that the control parser never panics, and that what it accepts encodes
// back to the same message.
func FuzzControl(f *testing.F) {
	for _, c := range []control{
		{Type: controlHeartbeat, Flags: heartbeatHello},
		{Type: controlRequest, ID: 9, Kind: "survey", Payload: []byte("x")},
		{Type: controlReply, ID: 1 << 20, Payload: []byte("yes")},
		{Type: controlError, ID: 3, Payload: []byte("busy")},
	} {
		f.Add(appendControl(nil, c))
	}
	f.Add([]byte("h\x02\x80\x80\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseControl(b)
		if err != nil {
			return
		}
		again, err := parseControl(appendControl(nil, c))
		if err != nil {
			t.Fatalf("parse(append(parse(%q))): %v", b, err)
		}
		if again.Type != c.Type || again.Flags != c.Flags || again.ID != c.ID || again.Kind != c.Kind || !bytes.Equal(again.Payload, c.Payload) {
			t.Fatalf("%q: parsed %+v, then %+v", b, c, again)
		}
	})
}
