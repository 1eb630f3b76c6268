package redis

import (
	"strconv"
	"testing"

	"github.com/herald-go/herald/broker"
)

// FuzzEnvelopes checks that parsing what arrives on Redis's channels never panics, and that
// the envelopes the broker writes parse back to what was put in.
func FuzzEnvelopes(f *testing.F) {
	f.Add("p", "from", []byte("payload"), uint64(3), "epoch")
	f.Add("h12:ab\nxyz", "", []byte{}, uint64(0), "")
	f.Add("3:abpayload", "a:b", []byte("\n"), uint64(1<<63), "e:\n")
	f.Add("-1:x", "n", []byte("9:"), uint64(1), "x")
	f.Fuzz(func(t *testing.T, msg, from string, payload []byte, off uint64, epoch string) {
		_, _, _ = parseTopicMessage(msg)
		_, _, _ = parseNodeMessage(msg)

		got, pos, ok := parseTopicMessage(envelopePlain(payload))
		if !ok || string(got) != string(payload) || !pos.IsZero() {
			t.Fatalf("plain %q parsed as %q %v %v", payload, got, pos, ok)
		}
		gotFrom, got, ok := parseNodeMessage(envelopeNode(from, payload))
		if !ok || gotFrom != from || string(got) != string(payload) {
			t.Fatalf("node message %q from %q parsed as %q from %q, %v", payload, from, got, gotFrom, ok)
		}
		// The publish script writes "h<offset>:<epoch>\n<payload>"; epochs are hex, never
		// holding a newline.
		for _, c := range epoch {
			if c == '\n' {
				return
			}
		}
		h := "h" + strconv.FormatUint(off, 10) + ":" + epoch + "\n" + string(payload)
		got, pos, ok = parseTopicMessage(h)
		if !ok || string(got) != string(payload) || pos != (broker.Position{Epoch: epoch, Offset: off}) {
			t.Fatalf("%q parsed as %q %v %v", h, got, pos, ok)
		}
	})
}
