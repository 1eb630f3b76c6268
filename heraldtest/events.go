package heraldtest

import (
	"encoding/json"

	"github.com/herald-go/herald/client"
)

// Events records what a client's callbacks hear, one Recorder for each, so that a test can
// wait for a connection, a disconnection or a push:
//
//	var ev heraldtest.Events
//	c := srv.Client(t, ev.Options(nil))
//	srv.DisconnectAll()
//	ev.Disconnects.Next(t) // WillReconnect: true
//	ev.Connects.Wait(t, 2) // the first connection, then the reconnection
//
// The zero Events is ready to use. Give its Options to one client only.
type Events struct {
	// Connects records OnConnect: the first connection and each reconnection.
	Connects Recorder[client.ConnectEvent]
	// Disconnects records OnDisconnect.
	Disconnects Recorder[client.DisconnectEvent]
	// Reconnects records OnReconnect: the waits before reconnection attempts.
	Reconnects Recorder[client.ReconnectEvent]
	// HeartbeatTimeouts records OnHeartbeatTimeout's willReconnect.
	HeartbeatTimeouts Recorder[bool]
	// Updates records OnUpdate: the server's pushes that belong to no subscription
	// (herald.Server.Broadcast, herald.Socket.Send).
	Updates Recorder[json.RawMessage]
	// Errors records OnError.
	Errors Recorder[error]
}

// Options returns a copy of base whose callbacks record into e. A callback that base already
// has still runs, before the event is recorded, so a Next that returns an event returns after
// the test's own callback has seen it. A nil base means the client's defaults.
func (e *Events) Options(base *client.Options) *client.Options {
	e.Connects.setName("OnConnect events")
	e.Disconnects.setName("OnDisconnect events")
	e.Reconnects.setName("OnReconnect events")
	e.HeartbeatTimeouts.setName("OnHeartbeatTimeout events")
	e.Updates.setName("OnUpdate pushes")
	e.Errors.setName("OnError errors")

	var o client.Options
	if base != nil {
		o = *base
	}
	o.OnConnect = chain(o.OnConnect, e.Connects.Add)
	o.OnDisconnect = chain(o.OnDisconnect, e.Disconnects.Add)
	o.OnReconnect = chain(o.OnReconnect, e.Reconnects.Add)
	o.OnHeartbeatTimeout = chain(o.OnHeartbeatTimeout, e.HeartbeatTimeouts.Add)
	o.OnUpdate = chain(o.OnUpdate, e.Updates.Add)
	o.OnError = chain(o.OnError, e.Errors.Add)
	return &o
}

// chain returns a callback that calls first, when set, and then record.
func chain[T any](first func(T), record func(T)) func(T) {
	if first == nil {
		return record
	}
	return func(v T) {
		first(v)
		record(v)
	}
}
