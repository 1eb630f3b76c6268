package herald

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/protocol"
)

// TestHandWrittenEncodingMatchesEncodingJSON checks the fast encoders against protocol.Marshal.
func TestHandWrittenEncodingMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, v := range []any{
		requestReply{Type: "request", ID: json.RawMessage(`7`), StatusCode: 200, Payload: json.RawMessage(`{"a":[1,2]}`)},
		requestReply{Type: "request", ID: json.RawMessage(`"x"`), StatusCode: 404, Payload: json.RawMessage(`"not\nthere"`)},
		pushPub{Type: "pub", Path: "/item/\"5\"\\\n\x01é🌍<&>", Message: json.RawMessage(`{"id":5}`)},
		pushUpdate{Type: "update", Message: json.RawMessage(`"hi"`)},
	} {
		want, err := protocol.Marshal(v)
		require.NoError(t, err)
		got, err := encode(v)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got))
		assert.Equal(t, string(want), string(got))
	}
	got, err := encode(requestReply{Type: "request", ID: json.RawMessage(`1`), Payload: json.RawMessage("{\n  \"a\": 1\n}")})
	require.NoError(t, err)
	assert.Equal(t, `{"type":"request","id":1,"statusCode":0,"payload":{"a":1}}`, string(got), "one line")
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\x1f\"\\\u2028é\xff")
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s", s, b)
		}
		want, _ := protocol.Marshal(s)
		if string(want) != string(b) {
			t.Fatalf("%q: got %s, encoding/json gives %s", s, b, want)
		}
	})
}
