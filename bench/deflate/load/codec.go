package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/flate"
)

// negotiated is what the server's response (and our offer) mean for the
// client's codec.
type negotiated struct {
	response   string // the server's Sec-WebSocket-Extensions
	sendCtx    bool   // the client keeps its context from message to message
	sendBits   int    // the client's window
	recvCtx    bool   // the server keeps its context
	serverBits int    // the server's window
}

// negotiate checks the server's response against offer (one
// permessage-deflate offer) and works out both directions (RFC 7692 §7.1).
// It is lenient where a server answers with a parameter the offer did not
// allow but that costs the client nothing.
func negotiate(offer, response string) (negotiated, error) {
	n := negotiated{response: response, sendCtx: true, sendBits: 15, recvCtx: true, serverBits: 15}
	if response == "" {
		return n, errors.New("handshake: the server did not accept permessage-deflate")
	}
	if strings.Contains(response, ",") {
		return n, fmt.Errorf("handshake: more than one extension in %q", response)
	}
	name, off := params(offer)
	rname, resp := params(response)
	if rname != name || name != "permessage-deflate" {
		return n, fmt.Errorf("handshake: response %q to offer %q", response, offer)
	}
	if _, ok := off["client_no_context_takeover"]; ok {
		n.sendCtx = false
	}
	for k, v := range resp {
		switch k {
		case "client_no_context_takeover":
			n.sendCtx = false
		case "server_no_context_takeover":
			n.recvCtx = false
		case "server_max_window_bits", "client_max_window_bits":
			bits, err := strconv.Atoi(v)
			if err != nil || bits < 8 || bits > 15 {
				return n, fmt.Errorf("handshake: %s=%q in %q", k, v, response)
			}
			if k == "server_max_window_bits" {
				n.serverBits = bits
			} else {
				n.sendBits = bits
			}
		default:
			return n, fmt.Errorf("handshake: unknown parameter %s in %q", k, response)
		}
	}
	return n, nil
}

// params splits "name; a; b=1; c=\"2\"" into the name and its parameters.
func params(h string) (string, map[string]string) {
	parts := strings.Split(h, ";")
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		m[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return strings.TrimSpace(parts[0]), m
}

// deflateTail ends every sync-flushed stream; RFC 7692 strips it from
// messages and has the receiver put it back. finalBlock, an empty final
// stored block, lets the decompressor report the end of the message.
var (
	deflateTail = []byte{0x00, 0x00, 0xff, 0xff}
	finalBlock  = []byte{0x01, 0x00, 0x00, 0xff, 0xff}
)

// encoder compresses the client's messages. With context takeover it keeps
// one compressor for the connection, so every message may refer to earlier
// ones within the window; without, it starts afresh for each message.
type encoder struct {
	w   *flate.Writer
	ctx bool
	out bytes.Buffer
}

func newEncoder(n negotiated) *encoder {
	e := &encoder{ctx: n.sendCtx}
	var err error
	if n.sendBits < 15 {
		e.w, err = flate.NewWriterWindow(&e.out, 1<<n.sendBits)
	} else {
		e.w, err = flate.NewWriter(&e.out, flate.BestSpeed)
	}
	if err != nil {
		panic(err) // bits and level are valid
	}
	return e
}

// encode returns msg compressed, valid until the next call.
func (e *encoder) encode(msg []byte) ([]byte, error) {
	e.out.Reset()
	if !e.ctx {
		e.w.Reset(&e.out)
	}
	if _, err := e.w.Write(msg); err != nil {
		return nil, err
	}
	if err := e.w.Flush(); err != nil {
		return nil, err
	}
	out, ok := bytes.CutSuffix(e.out.Bytes(), deflateTail)
	if !ok {
		return nil, errors.New("compressed message does not end with a sync flush")
	}
	return out, nil
}

// decoder inflates the server's messages. With context takeover it primes
// the decompressor with the last 32 KiB inflated (the largest window a
// server may use), so it decodes whatever window the server chose.
type decoder struct {
	r    io.ReadCloser
	ctx  bool
	hist []byte
	src  bytes.Reader
	buf  []byte
	out  []byte
}

func newDecoder(n negotiated) *decoder {
	return &decoder{r: flate.NewReader(bytes.NewReader(nil)), ctx: n.recvCtx}
}

// decode returns payload inflated, valid until the next call; it fails past
// max bytes.
func (d *decoder) decode(payload []byte, max int) ([]byte, error) {
	d.buf = append(append(append(d.buf[:0], payload...), deflateTail...), finalBlock...)
	d.src.Reset(d.buf)
	var dict []byte
	if d.ctx {
		dict = d.hist
	}
	if err := d.r.(flate.Resetter).Reset(&d.src, dict); err != nil {
		return nil, err
	}
	d.out = d.out[:0]
	for {
		if len(d.out) == cap(d.out) {
			d.out = append(d.out, 0)[:len(d.out)]
		}
		n, err := d.r.Read(d.out[len(d.out):cap(d.out)])
		d.out = d.out[:len(d.out)+n]
		if len(d.out) > max {
			return nil, fmt.Errorf("message inflates past %d bytes", max)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inflating: %w", err)
		}
	}
	if d.ctx {
		d.hist = append(d.hist, d.out...)
		if k := len(d.hist) - 32<<10; k > 0 {
			d.hist = append(d.hist[:0], d.hist[k:]...)
		}
	}
	return d.out, nil
}
