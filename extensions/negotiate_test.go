package extensions

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeExt accepts offers whose first parameter is "ok"; it records what it saw. It is a test
// of the negotiation rules, not of any real extension.
type fakeExt struct {
	name string
	rsv  RSV
	seen [][]Param
}

type nopSession struct{}

func (nopSession) Encode(*Message) error { return nil }
func (nopSession) Decode(*Message) error { return nil }

func (e *fakeExt) Name() string { return e.name }
func (e *fakeExt) RSV() RSV     { return e.rsv }
func (e *fakeExt) Accept(p []Param) ([]Param, Session, bool) {
	e.seen = append(e.seen, p)
	if len(p) > 0 && p[0].Name == "ok" {
		return []Param{{Name: "accepted"}}, nopSession{}, true
	}
	return nil, nil, false
}
func (e *fakeExt) Offer() []Param { return []Param{{Name: "ok"}} }
func (e *fakeExt) Activate(p []Param) (Session, error) {
	if len(p) != 1 || p[0].Name != "accepted" {
		return nil, errors.New("bad response")
	}
	return nopSession{}, nil
}

func TestServerNegotiateTriesNextOffer(t *testing.T) {
	t.Parallel()
	a := &fakeExt{name: "a", rsv: RSV1}
	offers, err := Parse("a; nope, a; ok, a; ok")
	require.NoError(t, err)
	n, err := ServerNegotiate(offers, []Extension{a})
	require.NoError(t, err)
	assert.Equal(t, "a; accepted", n.Header)
	assert.Len(t, a.seen, 2, "the third offer must not be tried once one was accepted")
	assert.Equal(t, RSV1, n.RSV)
}

func TestServerNegotiateOrderAndBits(t *testing.T) {
	t.Parallel()
	a := &fakeExt{name: "a", rsv: RSV1}
	b := &fakeExt{name: "b", rsv: RSV2}
	offers, err := Parse("b; ok, unknown, a; ok")
	require.NoError(t, err)
	n, err := ServerNegotiate(offers, []Extension{a, b})
	require.NoError(t, err)
	assert.Equal(t, "b; accepted, a; accepted", n.Header, "the client's order")
	assert.Equal(t, RSV1|RSV2, n.RSV)
}

func TestCheckRefusesSharedBits(t *testing.T) {
	t.Parallel()
	err := Check([]Extension{&fakeExt{name: "a", rsv: RSV1}, &fakeExt{name: "b", rsv: RSV1 | RSV3}})
	assert.ErrorContains(t, err, "reserved bit")
	assert.Error(t, Check([]Extension{&fakeExt{name: "a"}, &fakeExt{name: "a"}}))
	_, err = ServerNegotiate(nil, []Extension{&fakeExt{name: "a", rsv: RSV2}, &fakeExt{name: "b", rsv: RSV2}})
	assert.Error(t, err)
}

func TestClientActivate(t *testing.T) {
	t.Parallel()
	a := &fakeExt{name: "a", rsv: RSV1}
	offer, err := ClientOffer([]Extension{a})
	require.NoError(t, err)
	assert.Equal(t, "a; ok", offer)

	n, err := ClientActivate([]string{"a; accepted"}, []Extension{a})
	require.NoError(t, err)
	assert.Len(t, n.Sessions, 1)

	for _, bad := range []string{"b", "a; accepted, a; accepted", "a; wrong", "a;"} {
		_, err := ClientActivate([]string{bad}, []Extension{a})
		assert.Error(t, err, "response %q", bad)
	}
	n, err = ClientActivate(nil, []Extension{a})
	require.NoError(t, err)
	assert.Empty(t, n.Sessions, "a server may decline every offer")
}
