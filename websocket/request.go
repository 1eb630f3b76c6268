package websocket

import (
	"crypto/tls"
	"encoding/binary"
	"net/http"
	"net/url"
)

// handshakeRequest is what a connection keeps of its handshake request for Conn.Request: a
// few strings and the headers packed into one, rather than the request and its header map.
// On a server holding many connections the difference is most of a KiB per connection.
//
// A handshake is a GET over HTTP/1.1 (Upgrade refuses other methods and HTTP/1.0 and 2; a later
// HTTP/1.x, which no client sends, is reported as 1.1), so neither is kept.
type handshakeRequest struct {
	url        *url.URL // nil when parsing requestURI gives it back
	host       string
	remoteAddr string
	requestURI string
	header     string // packed by packHeader
	tls        *tls.ConnectionState
}

// snapshotRequest keeps what Conn.Request returns of r. The URL is shared with r, unless it
// is just the parsed request URI (as net/http makes it), which is then parsed again when
// asked for; it is copied by Conn.Request, never changed here.
func snapshotRequest(r *http.Request) handshakeRequest {
	u := r.URL
	if r.RequestURI != "" && u != nil {
		if again, err := url.ParseRequestURI(r.RequestURI); err == nil && *again == *u {
			u = nil
		}
	}
	return handshakeRequest{
		url:        u,
		host:       r.Host,
		remoteAddr: r.RemoteAddr,
		requestURI: r.RequestURI,
		header:     packHeader(r.Header),
		tls:        r.TLS,
	}
}

// request rebuilds the request, with fresh URL and header copies the caller may change.
func (h *handshakeRequest) request() *http.Request {
	var u url.URL
	switch {
	case h.url != nil:
		u = *h.url
	case h.requestURI != "":
		parsed, _ := url.ParseRequestURI(h.requestURI) // it parsed when the snapshot was taken
		u = *parsed
	default:
		return nil
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     unpackHeader(h.header),
		Body:       http.NoBody,
		Host:       h.host,
		RemoteAddr: h.remoteAddr,
		RequestURI: h.requestURI,
		TLS:        h.tls,
	}
}

// packHeader writes h as one string: for every value, its key's length, the key, the value's
// length and the value (lengths as uvarints), so that any byte may appear in either.
func packHeader(h http.Header) string {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += 2*binary.MaxVarintLen64 + len(k) + len(v)
		}
	}
	b := make([]byte, 0, n)
	for k, vs := range h {
		for _, v := range vs {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return string(b)
}

// unpackHeader reverses packHeader.
func unpackHeader(s string) http.Header {
	h := http.Header{}
	for len(s) > 0 {
		var k, v string
		k, s = unpackString(s)
		v, s = unpackString(s)
		h[k] = append(h[k], v)
	}
	return h
}

// unpackString splits one length-prefixed string off the front of s.
func unpackString(s string) (string, string) {
	n, w := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
	if w <= 0 || uint64(len(s)-w) < n {
		return "", "" // not written by packHeader
	}
	return s[w : w+int(n)], s[w+int(n):]
}
