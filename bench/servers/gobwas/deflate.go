package main

import (
	"compress/flate"
	"io"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// serveDeflate is the compressed echo server (-deflate), written as the
// wsflate section of gobwas/ws's README shows: wsflate.Extension with
// DefaultParameters negotiated by the upgrader (no context takeover either
// way, the only mode wsflate's helpers support), then wsutil.Reader and
// wsutil.Writer with a wsflate.MessageState as their extension, and a
// wsflate.Reader and wsflate.Writer per connection on compress/flate. The
// README's example compresses at level 9; this one uses level 1
// (flate.BestSpeed), the level every other server here uses.
//
// The README's Extension is shared by a serial accept loop and Reset before
// each upgrade; net/http upgrades concurrently, so each request gets its own.
func serveDeflate(w http.ResponseWriter, r *http.Request) {
	e := wsflate.Extension{Parameters: wsflate.DefaultParameters}
	u := ws.HTTPUpgrader{Negotiate: e.Negotiate}
	conn, _, _, err := u.Upgrade(r, w)
	if err != nil {
		return
	}
	if _, ok := e.Accepted(); !ok {
		conn.Close()
		return
	}
	go func() {
		defer conn.Close()
		fr := wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor {
			return flate.NewReader(r)
		})
		fw := wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
			f, _ := flate.NewWriter(w, flate.BestSpeed)
			return f
		})
		var msg wsflate.MessageState
		rd := &wsutil.Reader{
			Source:         conn,
			State:          ws.StateServerSide | ws.StateExtended,
			Extensions:     []wsutil.RecvExtension{&msg},
			OnIntermediate: wsutil.ControlFrameHandler(conn, ws.StateServerSide),
		}
		wr := wsutil.NewWriter(conn, ws.StateServerSide|ws.StateExtended, 0)
		wr.SetExtensions(&msg)
		control := wsutil.ControlFrameHandler(conn, ws.StateServerSide)
		for {
			h, err := rd.NextFrame()
			if err != nil {
				return
			}
			if h.OpCode.IsControl() {
				if err := control(h, rd); err != nil {
					return
				}
				continue
			}
			wr.ResetOp(h.OpCode)
			if !msg.IsCompressed() {
				if _, err := io.Copy(wr, rd); err != nil {
					return
				}
			} else {
				fr.Reset(rd)
				fw.Reset(wr)
				if _, err := io.Copy(fw, fr); err != nil {
					return
				}
				if err := fw.Close(); err != nil {
					return
				}
			}
			if err := wr.Flush(); err != nil {
				return
			}
		}
	}()
}
