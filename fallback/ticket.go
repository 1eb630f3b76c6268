package fallback

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// A ticket names a session to the client: who holds it (the node) and which one it is (128
// random bits), signed so that a client can neither guess nor alter one. It is the session's
// private name, never the public nes socket id.
//
// Layout, base64url without padding:
//
//	version (1 byte) | node length (1) | node | session id (16) | HMAC-SHA-256 of the rest, first 16 bytes
const (
	ticketVersion = 1
	sessionIDLen  = 16
	ticketMACLen  = 16
	maxNodeLen    = 64
)

var errBadTicket = errors.New("fallback: invalid ticket")

// ticketSigner makes and checks tickets with one key.
type ticketSigner struct {
	key []byte
}

// newSessionID returns 128 random bits.
func newSessionID() [sessionIDLen]byte {
	var id [sessionIDLen]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (it panics instead)
	return id
}

// sign returns the ticket of session id held by node.
func (s ticketSigner) sign(node string, id [sessionIDLen]byte) string {
	b := make([]byte, 0, 2+len(node)+sessionIDLen+ticketMACLen)
	b = append(b, ticketVersion, byte(len(node)))
	b = append(b, node...)
	b = append(b, id[:]...)
	b = append(b, s.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify checks a ticket's signature and returns the node and session id it names.
func (s ticketSigner) verify(ticket string) (node string, id [sessionIDLen]byte, err error) {
	if len(ticket) > base64.RawURLEncoding.EncodedLen(2+maxNodeLen+sessionIDLen+ticketMACLen) ||
		strings.ContainsAny(ticket, "\r\n") { // which the decoder skips, even in Strict mode
		return "", id, errBadTicket
	}
	// Strict: the unused bits of the last character must be zero, or one ticket would have
	// several spellings, and one altered character would still name the session.
	b, err := base64.RawURLEncoding.Strict().DecodeString(ticket)
	if err != nil || len(b) < 2+sessionIDLen+ticketMACLen || b[0] != ticketVersion {
		return "", id, errBadTicket
	}
	nodeLen := int(b[1])
	if len(b) != 2+nodeLen+sessionIDLen+ticketMACLen {
		return "", id, errBadTicket
	}
	body, mac := b[:len(b)-ticketMACLen], b[len(b)-ticketMACLen:]
	if !hmac.Equal(mac, s.mac(body)) {
		return "", id, errBadTicket
	}
	copy(id[:], body[2+nodeLen:])
	return string(body[2 : 2+nodeLen]), id, nil
}

func (s ticketSigner) mac(b []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write(b)
	return h.Sum(nil)[:ticketMACLen]
}
