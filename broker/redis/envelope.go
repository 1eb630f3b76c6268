package redis

import (
	"strconv"
	"strings"

	"github.com/herald-go/herald/broker"
)

// The envelopes of what goes through Redis's channels.
//
// On a topic's channel, a message published without history is "p" followed by the payload;
// one published with history is "h<offset>:<epoch>\n" followed by the payload (written by the
// publish script, see history.go). On a node's channel and the broadcast channel, a message is
// "<length of the sender's name>:<sender's name>" followed by the payload.

// envelopePlain returns the envelope of a message published without history.
func envelopePlain(payload []byte) string {
	var b strings.Builder
	b.Grow(1 + len(payload))
	b.WriteByte('p')
	b.Write(payload)
	return b.String()
}

// parseTopicMessage parses a topic's envelope.
func parseTopicMessage(msg string) (payload []byte, pos broker.Position, ok bool) {
	if msg == "" {
		return nil, pos, false
	}
	switch msg[0] {
	case 'p':
		return []byte(msg[1:]), pos, true
	case 'h':
		head, body, found := strings.Cut(msg[1:], "\n")
		if !found {
			return nil, pos, false
		}
		off, epoch, found := strings.Cut(head, ":")
		if !found {
			return nil, pos, false
		}
		n, err := strconv.ParseUint(off, 10, 64)
		if err != nil {
			return nil, pos, false
		}
		return []byte(body), broker.Position{Epoch: epoch, Offset: n}, true
	}
	return nil, pos, false
}

// envelopeNode returns the envelope of a message sent by node from.
func envelopeNode(from string, payload []byte) string {
	var b strings.Builder
	n := strconv.Itoa(len(from))
	b.Grow(len(n) + 1 + len(from) + len(payload))
	b.WriteString(n)
	b.WriteByte(':')
	b.WriteString(from)
	b.Write(payload)
	return b.String()
}

// parseNodeMessage parses a node message's envelope.
func parseNodeMessage(msg string) (from string, payload []byte, ok bool) {
	n, rest, found := strings.Cut(msg, ":")
	if !found {
		return "", nil, false
	}
	l, err := strconv.Atoi(n)
	if err != nil || l < 0 || l > len(rest) {
		return "", nil, false
	}
	return rest[:l], []byte(rest[l:]), true
}
