package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// NetConn returns the connection as a net.Conn byte stream, like faye-websocket's ws.pipe:
// Read returns the payloads of the data messages received (text or binary), one after another;
// each Write sends one message of type typ; Close closes with 1000 (normal closure). A close
// from the peer with 1000 or 1001 reads as io.EOF. Read and write deadlines work as on any
// net.Conn. ctx bounds every operation; cancelling it fails them without closing.
//
// Use NetConn to hand a WebSocket to code that speaks a stream protocol (io.Copy, TLS,
// SSH, a bufio.Scanner). Its Read is the connection's reader: don't also call Conn.Read.
func NetConn(ctx context.Context, c *Conn, typ MessageType) net.Conn {
	return &netConn{c: c, ctx: ctx, typ: typ}
}

type netConn struct {
	c   *Conn
	ctx context.Context
	typ MessageType

	readMu sync.Mutex
	msg    io.Reader // the message being read, nil between messages
	eof    bool

	dlMu          sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
}

func (n *netConn) opContext(dl time.Time) (context.Context, context.CancelFunc) {
	if dl.IsZero() {
		return n.ctx, func() {}
	}
	return context.WithDeadline(n.ctx, dl)
}

func (n *netConn) Read(p []byte) (int, error) {
	n.readMu.Lock()
	defer n.readMu.Unlock()
	if n.eof {
		return 0, io.EOF
	}
	n.dlMu.Lock()
	ctx, cancel := n.opContext(n.readDeadline)
	n.dlMu.Unlock()
	defer cancel()
	for {
		if n.msg == nil {
			_, r, err := n.c.Reader(ctx)
			if err != nil {
				if code := CloseStatus(err); code == StatusNormalClosure || code == StatusGoingAway {
					n.eof = true
					return 0, io.EOF
				}
				return 0, n.opError("read", err)
			}
			n.msg = r
		}
		k, err := n.msg.Read(p)
		if err == io.EOF {
			n.msg = nil
			if k == 0 {
				continue
			}
			err = nil
		}
		if err != nil {
			return k, n.opError("read", err)
		}
		return k, nil
	}
}

func (n *netConn) Write(p []byte) (int, error) {
	n.dlMu.Lock()
	ctx, cancel := n.opContext(n.writeDeadline)
	n.dlMu.Unlock()
	defer cancel()
	if err := n.c.Write(ctx, n.typ, p); err != nil {
		return 0, n.opError("write", err)
	}
	return len(p), nil
}

// opError reports deadline expiry the way net.Conn users test for it.
func (n *netConn) opError(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		err = os.ErrDeadlineExceeded
	}
	return &net.OpError{Op: op, Net: "websocket", Source: n.c.LocalAddr(), Addr: n.c.RemoteAddr(), Err: err}
}

func (n *netConn) Close() error {
	err := n.c.Close(StatusNormalClosure, "")
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

func (n *netConn) LocalAddr() net.Addr  { return n.c.LocalAddr() }
func (n *netConn) RemoteAddr() net.Addr { return n.c.RemoteAddr() }

func (n *netConn) SetDeadline(t time.Time) error {
	n.dlMu.Lock()
	n.readDeadline, n.writeDeadline = t, t
	n.dlMu.Unlock()
	return nil
}

func (n *netConn) SetReadDeadline(t time.Time) error {
	n.dlMu.Lock()
	n.readDeadline = t
	n.dlMu.Unlock()
	return nil
}

func (n *netConn) SetWriteDeadline(t time.Time) error {
	n.dlMu.Lock()
	n.writeDeadline = t
	n.dlMu.Unlock()
	return nil
}
