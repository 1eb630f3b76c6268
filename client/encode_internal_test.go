package client

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/protocol"
)

// TestEncodeMatchesEncodingJSON: the hand-written encoder writes what encoding/json (as
// JavaScript, without HTML escaping) would, for every field and awkward strings.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for _, m := range []*outMessage{
		{Type: "request", ID: 7, Method: "GET", Path: "/h"},
		{Type: "hello", ID: 1, Version: "2", Auth: &Auth{Token: "t<&>"}, Subs: []string{"/a", "/b"}},
		{Type: "hello", ID: 2, Version: "2", Auth: &Auth{Headers: map[string]string{"authorization": "Basic x"}}},
		{Type: "request", ID: 18446744073709551615, Method: "POST", Path: "/p?q=\"é\"\n\t\\<>&\u2028",
			Headers: map[string]string{"x-a": "1"}, Payload: map[string]any{"a": []int{1}}},
		{Type: "request", ID: 3, Method: "POST", Path: "/echo", Payload: json.RawMessage(`{"raw": true}`)},
		{Type: "message", ID: 4, Message: "\x00\x1f\x7f"},
		{Type: "ping", ID: 5},
	} {
		got, err := encode(m)
		require.NoError(t, err)
		want, err := protocol.Marshal(m)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got))
		assert.True(t, json.Valid(got), "%s", got)
	}
	_, err := encode(&outMessage{Type: "request", ID: 1, Payload: json.RawMessage(`{bad`)})
	assert.Error(t, err, "invalid raw JSON is refused, not sent")
	_, err = encode(&outMessage{Type: "message", ID: 1, Message: func() {}})
	assert.Error(t, err)
}

func BenchmarkEncodeRequest(b *testing.B) {
	m := &outMessage{Type: "request", Method: "GET", Path: "/h"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.ID = uint64(i)
		if _, err := encode(m); err != nil {
			b.Fatal(err)
		}
	}
}
