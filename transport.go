package herald

import (
	"context"
	"errors"

	"github.com/herald-go/herald/internal/protocol"
	"github.com/herald-go/herald/websocket"
)

// Transport is one client connection's message channel, whatever carries it. The nes layer
// speaks only through it: a WebSocket, or a fallback.Session (an EventSource stream or
// long-polls down, HTTP POSTs up, for clients whose network blocks WebSocket).
//
// One goroutine calls Receive; one at a time calls Send; Close may be called from any
// goroutine, any number of times.
type Transport interface {
	// Receive waits for the next message from the client.
	Receive(ctx context.Context) ([]byte, error)
	// Send delivers one encoded message, whole, to the client. The server never modifies
	// msg after the call (a publication's bytes go to every socket as they are), so a
	// transport may keep msg itself instead of a copy, as fallback.Session does.
	Send(ctx context.Context, msg []byte) error
	// Close ends the connection. Receive returns an error afterwards. A nil reason is the
	// protocol's normal close; otherwise the transport may tell the client that the server
	// failed (a WebSocket closes with 1011).
	Close(reason error) error
	// RemoteAddr names the client's end of the connection.
	RemoteAddr() string
}

// preparedSender is a Transport that can send a message prepared once for many sockets
// (framed, and compressed when the connection's compression allows, once per publish rather
// than once per socket). msg is the same message, unprepared.
type preparedSender interface {
	SendPrepared(ctx context.Context, msg []byte, pm *websocket.PreparedMessage) error
}

// wsTransport carries nes over a WebSocket: one message per text frame, long messages in
// chunks when Options.MaxChunkChars asks for them.
type wsTransport struct {
	c             *websocket.Conn
	maxChunkChars int
}

func (t *wsTransport) Receive(ctx context.Context) ([]byte, error) {
	_, data, err := t.c.Read(ctx)
	return data, err
}

func (t *wsTransport) Send(ctx context.Context, msg []byte) error {
	if t.maxChunkChars <= 0 {
		return t.c.Write(ctx, websocket.MessageText, msg)
	}
	for _, part := range protocol.Chunks(msg, t.maxChunkChars) {
		if err := t.c.Write(ctx, websocket.MessageText, part); err != nil {
			return err
		}
	}
	return nil
}

func (t *wsTransport) SendPrepared(ctx context.Context, msg []byte, pm *websocket.PreparedMessage) error {
	if t.maxChunkChars > 0 {
		return t.Send(ctx, msg)
	}
	return t.c.WritePrepared(ctx, pm)
}

// Close closes as the reference does (ws.close() with no code): a close frame without a
// status, which the client reports as 1005; or 1011 when the server failed. A socket that
// stopped reading (a slow consumer, a failed send) is dropped at once: its closing handshake
// could only wait.
func (t *wsTransport) Close(reason error) error {
	var err error
	switch {
	case errors.Is(reason, errPanic):
		err = t.c.Close(websocket.StatusInternalError, "internal error")
	case errors.Is(reason, ErrServiceRestart):
		err = t.c.Close(websocket.StatusServiceRestart, "broker link lost: reconnect")
	case reason == nil || errors.Is(reason, ErrServerClosed):
		err = t.c.Close(websocket.StatusNoStatusRcvd, "")
	default:
		err = t.c.CloseNow()
	}
	if errors.Is(err, websocket.ErrClosed) {
		return nil
	}
	return err
}

func (t *wsTransport) RemoteAddr() string { return t.c.RemoteAddr().String() }
