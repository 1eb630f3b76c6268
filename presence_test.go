package herald

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPresenceFollowsReauth(t *testing.T) {
	t.Parallel()
	o := &Options{Heartbeat: &Heartbeat{Disabled: true}}
	clusterAuth(o)
	srv := NewServer(nil, o)
	url := newTestServer(t, srv)
	srv.Subscription("/room/{id}", &SubscriptionOptions{PresenceEvents: true}) // no user index
	c := dialRaw(t, url, nil)
	c.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})
	early := c.sub("/room/1")
	id := srv.socketIDs()[0]
	require.Equal(t, map[string]any{"presence": "join", "socket": id, "user": "ann"}, c.nextPresence(&early))

	c.send(map[string]any{"type": "reauth", "id": 3, "auth": map[string]any{"headers": map[string]string{"authorization": "bea"}}})
	require.Equal(t, "reauth", c.next(waitMsg)["type"])
	p, err := srv.Presence(context.Background(), "/room/1")
	require.NoError(t, err)
	require.Equal(t, []string{"bea"}, p.Users)

	// Another subscriber hears the leave, under the new user; the socket that left does not.
	d := dialRaw(t, url, nil)
	d.hello(nil)
	dEarly := d.sub("/room/1")
	require.Equal(t, "join", d.nextPresence(&dEarly)["presence"])
	c.nextPresence(&early) // d's join
	c.send(map[string]any{"type": "unsub", "id": 4, "path": "/room/1"})
	require.Equal(t, map[string]any{"presence": "leave", "socket": id, "user": "bea"}, d.nextPresence(&dEarly))
	require.Equal(t, map[string]any{"type": "unsub", "id": float64(4)}, c.next(waitMsg))
}

// socketIDs returns the ids of the server's sockets.
func (s *Server) socketIDs() []string {
	var ids []string
	s.EachSocket(func(sock *Socket) bool { ids = append(ids, sock.ID); return true })
	return ids
}
