package websocket

import (
	"context"
	"fmt"
	"sync"

	"github.com/gobwas/ws"

	"github.com/herald-go/herald/extensions"
)

// PreparedMessage is a message to be written to many connections, encoded and framed once per
// kind of connection: once for all server connections without extensions, and once for all
// connections whose extensions encode without per-connection state (permessage-deflate with
// server_no_context_takeover, for example). Writing it to a server connection is then one
// write(2) of bytes shared by all of them. Connections that keep compression context get
// their own encoding, as with Write; client connections mask every frame, so they frame it
// themselves.
//
// A PreparedMessage is safe for concurrent use. Its data must not change after
// NewPreparedMessage.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	plainOnce sync.Once
	plain     []byte // the whole server frame, without extensions

	mu      sync.Mutex
	encoded map[string]preparedEncoding
}

type preparedEncoding struct {
	rsv   byte
	data  []byte
	frame []byte // the whole server frame: header and data
}

// NewPreparedMessage prepares a message of type typ for WritePrepared.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("websocket: cannot prepare a message of type %v", typ)
	}
	return &PreparedMessage{typ: typ, data: data}, nil
}

// WritePrepared writes a prepared message, as Write does.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	if c.ext == nil {
		if c.client {
			return c.Write(ctx, pm.typ, pm.data)
		}
		pm.plainOnce.Do(func() { pm.plain = frameOf(pm.typ, 0, pm.data) })
		return c.writeFramed(ctx, len(pm.data), pm.plain)
	}
	key, shared := c.ext.SharedKey()
	if !shared {
		return c.Write(ctx, pm.typ, pm.data)
	}
	enc, err := pm.encoding(key, c.ext)
	if err != nil {
		return err
	}
	c.meterDeflate(len(pm.data), len(enc.data), enc.rsv != 0)
	if c.client {
		return c.writeEncoded(ctx, pm.typ, enc.rsv, enc.data)
	}
	return c.withTurn(ctx, len(enc.data), func() error { return c.writeFramedFrame(ctx, enc.frame) })
}

// frameOf returns a whole unmasked frame holding p.
func frameOf(typ MessageType, rsv byte, p []byte) []byte {
	b := make([]byte, 0, maxHeaderSize+len(p))
	b = appendHeader(b, true, ws.OpCode(typ), rsv, len(p), false, [4]byte{})
	return append(b, p...)
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
	enc := preparedEncoding{rsv: byte(m.RSV), data: m.Data, frame: frameOf(pm.typ, byte(m.RSV), m.Data)}
	if pm.encoded == nil {
		pm.encoded = map[string]preparedEncoding{}
	}
	pm.encoded[key] = enc
	return enc, nil
}

// WriteUncompressed writes a message as Write does, but asks the extensions to leave it as it
// is (extensions.Message.Raw): for data that is already compressed, such as images or
// archives, which permessage-deflate then sends as they are.
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	return c.writeMessage(ctx, typ, p, true)
}
