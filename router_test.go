package herald

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, path string
		params        map[string]string // nil: no match
	}{
		{"/items", "/items", map[string]string{}},
		{"/items", "/items/", nil},
		{"/item/{id}", "/item/5", map[string]string{"id": "5"}},
		{"/item/{id}", "/item/", nil},
		{"/item/{id}", "/item/5/6", nil},
		{"/item/{id?}", "/item", map[string]string{}},
		{"/item/{id?}", "/item/", map[string]string{}},
		{"/item/{id?}", "/item/7", map[string]string{"id": "7"}},
		{"/files/{path*}", "/files", map[string]string{}},
		{"/files/{path*}", "/files/a/b/c", map[string]string{"path": "a/b/c"}},
		{"/pair/{ab*2}/x", "/pair/a/b/x", map[string]string{"ab": "a/b"}},
		{"/pair/{ab*2}/x", "/pair/a/x", nil},
		{"/img/{name}.{ext}", "/img/cat.jpg", map[string]string{"name": "cat", "ext": "jpg"}},
		{"/v{version}/feed", "/v2/feed", map[string]string{"version": "2"}},
		{"/v{version}/feed", "/x2/feed", nil},
	}
	for _, tc := range cases {
		p, err := parsePattern(tc.pattern)
		require.NoError(t, err, tc.pattern)
		params, ok := p.match(tc.path)
		if tc.params == nil {
			assert.False(t, ok, "%s should not match %s", tc.pattern, tc.path)
			continue
		}
		require.True(t, ok, "%s should match %s", tc.pattern, tc.path)
		assert.Equal(t, tc.params, params, "%s %s", tc.pattern, tc.path)
	}
}

func TestPatternErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "items", "/a/{b?}/c", "/a/{b*}/c", "/a/{b*0}", "/a/{b", "/a/x{b?}"} {
		_, err := parsePattern(bad)
		assert.Error(t, err, bad)
	}
}

func TestMostSpecificSubscriptionWins(t *testing.T) {
	t.Parallel()
	ss := newSubscriptions()
	for _, p := range []string{"/{a*}", "/item/{id}", "/item/latest", "/item/{id}.json"} {
		pat, err := parsePattern(p)
		require.NoError(t, err)
		ss.list = append(ss.list, &subscription{pattern: pat})
	}
	for path, want := range map[string]string{
		"/item/latest":   "/item/latest",
		"/item/5":        "/item/{id}",
		"/item/5.json":   "/item/{id}.json",
		"/other/thing":   "/{a*}",
		"/item/5/deeper": "/{a*}",
	} {
		sub, _, ok := ss.match(path)
		require.True(t, ok, path)
		assert.Equal(t, want, sub.pattern.raw, path)
	}
}
