package extensions

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		values []string
		want   []Offer
		bad    bool
	}{
		{name: "empty", values: []string{""}, want: nil},
		{name: "one", values: []string{"permessage-deflate"}, want: []Offer{{Name: "permessage-deflate"}}},
		{name: "browser", values: []string{"permessage-deflate; client_max_window_bits"},
			want: []Offer{{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits"}}}}},
		{name: "several offers and values", values: []string{`permessage-deflate; server_max_window_bits=10, permessage-deflate ; client_max_window_bits = "12" ,x-foo`},
			want: []Offer{
				{Name: "permessage-deflate", Params: []Param{{Name: "server_max_window_bits", Value: "10"}}},
				{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits", Value: "12"}}},
				{Name: "x-foo"},
			}},
		{name: "several headers", values: []string{"a", "b; c"}, want: []Offer{{Name: "a"}, {Name: "b", Params: []Param{{Name: "c"}}}}},
		{name: "empty elements", values: []string{", a,,b"}, want: []Offer{{Name: "a"}, {Name: "b"}}},
		{name: "escaped quoted token", values: []string{`a; b="1\0"`}, want: []Offer{{Name: "a", Params: []Param{{Name: "b", Value: "10"}}}}},
		{name: "missing name", values: []string{"; x"}, bad: true},
		{name: "missing param", values: []string{"a;"}, bad: true},
		{name: "missing value", values: []string{"a; b="}, bad: true},
		{name: "unterminated quote", values: []string{`a; b="1`}, bad: true},
		{name: "quoted non-token", values: []string{`a; b="x y"`}, bad: true},
		{name: "junk", values: []string{"a b"}, bad: true},
		{name: "separator in name", values: []string{"a/b"}, bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.values...)
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()
	offers := []Offer{
		{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits"}, {Name: "server_max_window_bits", Value: "10"}}},
		{Name: "x-webkit"},
	}
	s := Format(offers...)
	assert.Equal(t, "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-webkit", s)
	back, err := Parse(s)
	require.NoError(t, err)
	assert.Equal(t, offers, back)
}

func FuzzParse(f *testing.F) {
	f.Add(`permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits="10"`)
	f.Add(`a; b="\"", c`)
	f.Fuzz(func(t *testing.T, s string) {
		offers, err := Parse(s)
		if err != nil {
			return
		}
		// What parses formats back to something that parses to the same offers.
		back, err := Parse(Format(offers...))
		if err != nil {
			t.Fatalf("Format(%q) does not parse: %v", s, err)
		}
		if len(back) != len(offers) {
			t.Fatalf("%q: %d offers, %d after a round trip", s, len(offers), len(back))
		}
		for i := range back {
			if back[i].Name != offers[i].Name || len(back[i].Params) != len(offers[i].Params) {
				t.Fatalf("%q: offer %d changed in a round trip", s, i)
			}
		}
	})
}
