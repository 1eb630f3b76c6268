package herald

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealRoundTripTamperAndExpiry(t *testing.T) {
	t.Parallel()
	s, err := newSealer(strings.Repeat("p", 32))
	require.NoError(t, err)
	creds := &Credentials{User: "john", Scope: []string{"a"}, Data: map[string]any{"name": "John Doe"}}
	tok, err := s.seal(creds, time.Minute)
	require.NoError(t, err)
	got, err := s.unseal(tok)
	require.NoError(t, err)
	assert.Equal(t, creds, got)

	// Every single-character change is refused.
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		_, err := s.unseal(string(b))
		assert.Error(t, err, "flipped byte %d", i)
	}
	other, _ := newSealer(strings.Repeat("q", 32))
	_, err = other.unseal(tok)
	assert.Error(t, err, "another password must not open it")

	expired, err := s.seal(creds, -time.Second)
	require.NoError(t, err)
	_, err = s.unseal(expired)
	assert.Error(t, err)

	_, err = newSealer("short")
	assert.Error(t, err)
}
