package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMembers checks Members, which walks the header objects clients send, against
// encoding/json's own walk of the same object: the same names, decoded the same way, with the
// same values, in the same order, repeated names included.
func FuzzMembers(f *testing.F) {
	f.Add([]byte(` { "a" : [1, {"x":"}"}] , "b\u0041":"v","a":null } `))
	f.Add([]byte(`{"x-a":[["a",null],[]],"\ud800":1,"\u00e9\"":{"k":"]"}}`))
	f.Add([]byte(`{"":"","\\":"\\\"","a\/b":-0.5e+10}`))
	f.Add([]byte(`{"deep":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`))
	f.Add([]byte(`[{"a":1}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // Members takes what Decode gives, which is valid JSON
		}
		type member struct{ name, value string }
		var got []member
		err := Members(data, func(name string, value json.RawMessage) error {
			got = append(got, member{name, compact(t, value)})
			return nil
		})
		if err != nil {
			t.Fatalf("Members(%q): %v", data, err)
		}
		var want []member
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, _ := dec.Token(); tok == json.Delim('{') {
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				want = append(want, member{tok.(string), compact(t, v)})
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%q: Members gave %q, encoding/json %q", data, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: member %d is %q, encoding/json says %q", data, i, got[i], want[i])
			}
		}
	})
}

// compact is v without insignificant space.
func compact(t *testing.T, v []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		t.Fatalf("value %q is not JSON: %v", v, err)
	}
	return b.String()
}
