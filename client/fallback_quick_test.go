package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
)

func TestFallbackQuick(t *testing.T) {
	for _, tr := range []string{client.TransportSSE, client.TransportPoll} {
		t.Run(tr, func(t *testing.T) {
			srv := newLocalServer(t, nil)
			c := srv.Client(t, &client.Options{Transports: []string{tr}})
			assert.Equal(t, tr, c.Transport())
			res, err := c.Request(testContext(t), "hello")
			require.NoError(t, err)
			assert.JSONEq(t, `"world!"`, string(res.Payload))
			u := heraldtest.Subscribe(t, c, "/item/1")
			require.NoError(t, srv.Nes.Publish("/item/1", 5, nil))
			assert.JSONEq(t, "5", string(u.Next(t).Message))
		})
	}
}
