package herald

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDirectAuthHeaders: the hello's headers reach Authenticate in one pass, the last of names
// that differ only in case winning (as JSON.parse and the reference's header set do), and at most
// as many as a request may carry: past that the hello gets 431 and the socket closes.
func TestDirectAuthHeaders(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 4)
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{
		Authenticate: func(r *http.Request) (*Credentials, error) {
			seen <- r.Header.Get("Authorization")
			return &Credentials{User: "u"}, nil
		}}})
	url := newTestServer(t, srv)

	c := dialRaw(t, url, nil)
	reply := c.hello(map[string]any{"headers": map[string]any{"authorization": "first"}})
	assert.Equal(t, "hello", reply["type"])
	assert.Equal(t, "first", <-seen)

	c = dialRaw(t, url, nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "2",
		"auth": map[string]any{"headers": map[string]any{}}}) // no header: no credentials
	c.next(5 * time.Second)
	<-seen

	raw := dialRaw(t, url, nil)
	require.NoError(t, wsutil.WriteClientText(raw.conn,
		[]byte(`{"type":"hello","id":1,"version":"2","auth":{"headers":{"authorization":"a","AUTHORIZATION":"b"}}}`)))
	raw.next(5 * time.Second)
	assert.Equal(t, "b", <-seen, "the last of names that differ in case")

	many := map[string]any{}
	for i := range maxRequestHeaders + 1 {
		many["x-h"+strconv.Itoa(i)] = "v"
	}
	c = dialRaw(t, url, nil)
	reply = c.hello(map[string]any{"headers": many})
	assert.EqualValues(t, 431, reply["statusCode"])
	assert.Empty(t, seen, "Authenticate was not called")
	c.closed(5 * time.Second)
}

// TestWrongVersionEchoIsBounded: the error for a wrong protocol version echoes what was sent,
// as the reference does, but at most maxEchoedVersion bytes of it.
func TestWrongVersionEchoIsBounded(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	c := dialRaw(t, newTestServer(t, srv), nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": strings.Repeat("é", 100000)})
	reply := c.next(5 * time.Second)
	assert.EqualValues(t, 400, reply["statusCode"])
	msg := reply["payload"].(map[string]any)["message"].(string)
	assert.Less(t, len(msg), 200, "the echo is bounded")
	assert.True(t, strings.HasPrefix(msg, "Incorrect protocol version (expected 2 but received éé"), msg)

	c = dialRaw(t, newTestServer(t, srv), nil)
	c.send(map[string]any{"type": "hello", "id": 1, "version": "1"})
	assert.Equal(t, "Incorrect protocol version (expected 2 but received 1)", c.next(5 * time.Second)["payload"].(map[string]any)["message"])
}
