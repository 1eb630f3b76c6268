package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeExactFieldNames(t *testing.T) {
	m, err := Decode([]byte(`{"Type":"hello","type":"ping","id":1}`))
	require.NoError(t, err)
	assert.Equal(t, `"ping"`, string(m.Type))
	_, err = Decode([]byte(`5`))
	assert.Error(t, err)
	_, err = Decode([]byte(`null`))
	assert.Error(t, err)
}

func TestTruthyAndJSString(t *testing.T) {
	for raw, want := range map[string]bool{``: false, `0`: false, `0.0`: false, `""`: false, `null`: false, `false`: false,
		`1`: true, `"0"`: true, `{}`: true, `[]`: true, `true`: true, `-1`: true} {
		assert.Equal(t, want, Truthy([]byte(raw)), raw)
	}
	for raw, want := range map[string]string{`"2"`: "2", `3`: "3", `1.50`: "1.5", `{"a":1}`: "[object Object]", `[1,"a",null]`: "1,a,", `true`: "true", `[["a",null],[]]`: "a,,"} {
		assert.Equal(t, want, JSString([]byte(raw)), raw)
	}
}

func TestMarshalLikeJSON(t *testing.T) {
	b, err := Marshal(map[string]string{"a": "<&>"})
	require.NoError(t, err)
	assert.Equal(t, `{"a":"<&>"}`, string(b))
}

func TestChunks(t *testing.T) {
	msg := []byte(`{"type":"update","message":"` + strings.Repeat("é🌍x", 20) + `"}`)
	for _, max := range []int{1, 2, 3, 7, 16, 1000} {
		parts := Chunks(msg, max)
		var a Assembler
		var got []byte
		for i, p := range parts {
			require.True(t, utf8.Valid(p), "part %d cuts a character", i)
			if len(parts) > 1 {
				want := byte('+')
				if i == len(parts)-1 {
					want = '!'
				}
				require.Equal(t, want, p[0])
				units := utf16Len(p[1:])
				require.True(t, units <= max || utf8.RuneCount(p[1:]) == 1, "part %d has %d units > %d", i, units, max)
			}
			out, err := a.Add(p)
			require.NoError(t, err)
			if out != nil {
				got = out
			}
		}
		assert.Equal(t, msg, got, "max %d", max)
	}
	assert.Len(t, Chunks(msg, 0), 1)
}

func TestAssemblerDropsIncomplete(t *testing.T) {
	var a Assembler
	out, err := a.Add([]byte(`+{"type"`))
	assert.Nil(t, out)
	assert.NoError(t, err)
	out, err = a.Add([]byte(`{"type":"ping"}`))
	assert.ErrorIs(t, err, ErrIncomplete)
	assert.Equal(t, `{"type":"ping"}`, string(out))
	a.Limit = 4
	_, err = a.Add([]byte(`+12345`))
	assert.ErrorIs(t, err, ErrChunkTooLarge)
}

// FuzzDecode checks the hand-written scanner against encoding/json's map decoding, which
// matches names exactly and keeps the last of repeated names, as JSON.parse does.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"hello","id":1,"version":"2","subs":["/a"]}`))
	f.Add([]byte(`{"type":5,"id":{},"payload":[1,2],"type":"x"}`))
	f.Add([]byte(` { "\u0074ype" : "a\"b" , "path":"/x\\"} `))
	// Nesting at the bound and one past it (the message object is one level), with brackets
	// in strings along the way.
	for _, depth := range []int{MaxDepth, MaxDepth + 1} {
		levels := depth - 1
		open, shut := strings.Repeat(`[{"]":`, levels/2), strings.Repeat(`}]`, levels/2)
		if levels%2 == 1 {
			open, shut = "["+open, shut+"]"
		}
		f.Add([]byte(`{"type":"request","id":1,"payload":` + open + `"[{"` + shut + `}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		var ref map[string]json.RawMessage
		refErr := json.Unmarshal(data, &ref)
		if refErr != nil || ref == nil {
			if err == nil {
				t.Fatalf("Decode accepted %q", data)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode refused %q: %v", data, err)
		}
		for name, got := range map[string]json.RawMessage{"type": m.Type, "id": m.ID, "version": m.Version, "auth": m.Auth,
			"subs": m.Subs, "method": m.Method, "path": m.Path, "headers": m.Headers, "payload": m.Payload, "message": m.Message} {
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(ref[name])) {
				t.Fatalf("%q: field %s = %q, encoding/json says %q", data, name, got, ref[name])
			}
		}
		_ = Truthy(m.ID)
		_ = JSString(m.Version)
	})
}

// TestDecodeDepthBound: a message nested MaxDepth deep is taken, one level more is refused
// (json.Valid enforces encoding/json's limit; this says that it is still ours).
func TestDecodeDepthBound(t *testing.T) {
	t.Parallel()
	nested := func(depth int) []byte {
		// the message object is one level
		return []byte(`{"type":"request","id":1,"payload":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
	}
	_, err := Decode(nested(MaxDepth))
	assert.NoError(t, err)
	_, err = Decode(nested(MaxDepth + 1))
	assert.Error(t, err)
}

func TestMembers(t *testing.T) {
	t.Parallel()
	var got []string
	err := Members([]byte(` { "a" : [1, {"x":"}"}] , "b\u0041":"v","a":null } `), func(name string, value json.RawMessage) error {
		got = append(got, name+"="+string(value))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`a=[1, {"x":"}"}]`, `bA="v"`, `a=null`}, got)
	for _, raw := range []string{`[]`, `"x"`, `{}`, ``, `5`} {
		assert.NoError(t, Members([]byte(raw), func(string, json.RawMessage) error { t.Fatal(raw); return nil }))
	}
	stop := errorString("stop")
	n := 0
	assert.ErrorIs(t, Members([]byte(`{"a":1,"b":2}`), func(string, json.RawMessage) error { n++; return stop }), stop)
	assert.Equal(t, 1, n)
}
