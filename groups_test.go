package herald

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGroupsOnOneNode(t *testing.T) {
	t.Parallel()
	o := &Options{Heartbeat: &Heartbeat{Disabled: true}}
	clusterAuth(o) // OnConnection joins the group named after the user
	srv := NewServer(nil, o)
	url := newTestServer(t, srv)
	red := dialRaw(t, url, nil)
	red.hello(map[string]any{"headers": map[string]string{"authorization": "ann red"}})
	blue := dialRaw(t, url, nil)
	blue.hello(map[string]any{"headers": map[string]string{"authorization": "bob blue"}})

	require.NoError(t, srv.BroadcastGroup("red", "to red"))
	require.NoError(t, srv.Broadcast("all", nil))
	require.Equal(t, map[string]any{"type": "update", "message": "to red"}, red.next(waitMsg))
	require.Equal(t, map[string]any{"type": "update", "message": "all"}, red.next(waitMsg))
	require.Equal(t, map[string]any{"type": "update", "message": "all"}, blue.next(waitMsg), "blue is not in red")

	// bob joins red too (twice: the same as once), then leaves blue.
	var bob *Socket
	srv.EachSocket(func(s *Socket) bool {
		if s.user() == "bob" {
			bob = s
		}
		return bob == nil
	})
	require.NoError(t, bob.Join(context.Background(), "red"))
	require.NoError(t, bob.Join(context.Background(), "red"))
	bob.Leave("blue")
	bob.Leave("never")
	require.Equal(t, []string{"red"}, bob.Groups())
	require.NoError(t, srv.BroadcastGroup("red", "red again"))
	require.Equal(t, map[string]any{"type": "update", "message": "red again"}, blue.next(waitMsg))
	survey, err := srv.Sockets(context.Background(), &SocketsQuery{Group: "red", User: "bob"})
	require.NoError(t, err)
	require.Equal(t, 1, survey.Count())

	// A closed socket leaves its groups, and cannot join one.
	_ = blue.conn.Close()
	require.Eventually(t, func() bool { return len(srv.groups.members("red")) == 1 }, waitMsg, 5*time.Millisecond)
	require.ErrorIs(t, bob.Join(context.Background(), "green"), ErrSocketClosed)
	require.Empty(t, srv.groups.of(bob))
	require.Error(t, srv.BroadcastGroup("", "x"))
}
