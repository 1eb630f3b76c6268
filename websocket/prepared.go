package websocket

import (
	"context"
	"fmt"
	"sync"

	"github.com/herald-go/herald/extensions"
)

// PreparedMessage is a message to be written to many connections, encoded once per kind of
// connection: once for all connections without extensions, and once for all connections
// whose extensions encode without per-connection state (permessage-deflate with
// server_no_context_takeover, for example). Connections that keep compression context get
// their own encoding, as with Write.
//
// A PreparedMessage is safe for concurrent use. Its data must not change after
// NewPreparedMessage.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu      sync.Mutex
	encoded map[string]preparedEncoding
}

type preparedEncoding struct {
	rsv  byte
	data []byte
}

// NewPreparedMessage prepares a message of type typ for WritePrepared.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("websocket: cannot prepare a message of type %v", typ)
	}
	return &PreparedMessage{typ: typ, data: data, encoded: map[string]preparedEncoding{}}, nil
}

// WritePrepared writes a prepared message, as Write does.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	if c.ext == nil {
		return c.Write(ctx, pm.typ, pm.data)
	}
	key, shared := c.ext.SharedKey()
	if !shared {
		return c.Write(ctx, pm.typ, pm.data)
	}
	enc, err := pm.encoding(key, c.ext)
	if err != nil {
		return err
	}
	return c.writeEncoded(ctx, pm.typ, enc.rsv, enc.data)
}

// encoding returns the message encoded by a chain with the given shared key, encoding it on
// first use.
func (pm *PreparedMessage) encoding(key string, n *extensions.Negotiated) (preparedEncoding, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if enc, ok := pm.encoded[key]; ok {
		return enc, nil
	}
	m := extensions.Message{Text: pm.typ == MessageText, Data: pm.data}
	if err := n.Encode(&m); err != nil {
		return preparedEncoding{}, fmt.Errorf("websocket: extension: %w", err)
	}
	enc := preparedEncoding{rsv: byte(m.RSV), data: m.Data}
	pm.encoded[key] = enc
	return enc, nil
}

// WriteUncompressed writes a message as Write does, but asks the extensions to leave it as it
// is (extensions.Message.Raw): for data that is already compressed, such as images or
// archives, which permessage-deflate then sends as they are.
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	return c.writeMessage(ctx, typ, p, true)
}
