package heraldtest

import (
	"context"
	"testing"

	"github.com/herald-go/herald/client"
)

// Subscribe subscribes to path on c and returns a Recorder of its updates: the publications,
// and the revocation if one comes (Update.Revoked). It returns once the server has confirmed
// the subscription, and fails the test if the server refuses it or does not answer within
// DefaultTimeout (and c's Options.Timeout).
//
// The subscription lasts as long as c, across reconnections; c.Unsubscribe ends it.
func Subscribe(t testing.TB, c *client.Client, path string) *Recorder[client.Update] {
	t.Helper()
	rec := &Recorder[client.Update]{name: "updates of " + path}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, path, rec.Add); err != nil {
		t.Fatalf("heraldtest: subscribe to %s: %v", path, err)
		return nil
	}
	return rec
}
