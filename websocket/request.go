package websocket

import (
	"crypto/tls"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
)

// handshakeRequest is what a connection keeps of its handshake request for Conn.Request: the
// host, remote address, request URI and headers packed into one string, rather than the
// request, its header map and the strings they point into (a request URI points into the
// whole request line). On a server holding many connections the difference is most of a KiB
// per connection.
//
// A handshake is a GET over HTTP/1.1 (Upgrade refuses other methods and HTTP/1.0 and 2; a later
// HTTP/1.x, which no client sends, is reported as 1.1), so neither is kept.
type handshakeRequest struct {
	url    *url.URL // nil when parsing the request URI gives it back
	packed string   // packed by packRequest
	tls    *tls.ConnectionState
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
	return handshakeRequest{url: u, packed: packRequest(r), tls: r.TLS}
}

// request rebuilds the request, with fresh URL and header copies the caller may change.
func (h *handshakeRequest) request() *http.Request {
	host, s := unpackString(h.packed)
	remoteAddr, s := unpackString(s)
	requestURI, s := unpackString(s)
	var u url.URL
	switch {
	case h.url != nil:
		u = *h.url
	case requestURI != "":
		parsed, _ := url.ParseRequestURI(requestURI) // it parsed when the snapshot was taken
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
		Header:     unpackHeader(s),
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: remoteAddr,
		RequestURI: requestURI,
		TLS:        h.tls,
	}
}

// packRequest writes r's host, remote address and request URI, then every header value with
// its key, as one string of length-prefixed strings (lengths as uvarints), so that any byte
// may appear in any of them.
func packRequest(r *http.Request) string {
	n := packedLen(r.Host) + packedLen(r.RemoteAddr) + packedLen(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += packedLen(k) + packedLen(v)
		}
	}
	// Built in place, at its exact length: the string is the one allocation.
	var b strings.Builder
	b.Grow(n)
	var lenBuf [binary.MaxVarintLen64]byte
	put := func(s string) {
		b.Write(binary.AppendUvarint(lenBuf[:0], uint64(len(s))))
		b.WriteString(s)
	}
	put(r.Host)
	put(r.RemoteAddr)
	put(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			put(k)
			put(v)
		}
	}
	return b.String()
}

// packedLen is how long s is once packed, length first.
func packedLen(s string) int {
	var lenBuf [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(lenBuf[:0], uint64(len(s)))) + len(s)
}

// unpackHeader reverses what packRequest wrote of the headers.
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
		return "", "" // not written by packRequest
	}
	return s[w : w+int(n)], s[w+int(n):]
}
