package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The control messages that Nodes exchange with Send. Every message starts with the byte
// controlMagic and a type byte:
//
//	heartbeat: 'h' 1 flags                      (flags: heartbeatHello, heartbeatBye)
//	request:   'h' 2 uvarint(id) uvarint(len(kind)) kind payload...
//	reply:     'h' 3 uvarint(id) payload...
//	error:     'h' 4 uvarint(id) message...
//
// The payload runs to the end of the message. Ids are chosen by the requesting node and only
// mean something to it: replies go back to the sender alone.
const controlMagic = 'h'

type controlType byte

const (
	controlHeartbeat controlType = 1
	controlRequest   controlType = 2
	controlReply     controlType = 3
	controlError     controlType = 4
)

const (
	heartbeatHello byte = 1 << 0 // the sender has just started or lost its link: answer with a heartbeat
	heartbeatBye   byte = 1 << 1 // the sender is closing: forget it now
)

// maxKindLen bounds a request's kind.
const maxKindLen = 255

// control is one decoded control message. Kind and Payload alias the decoded message.
type control struct {
	Type    controlType
	Flags   byte // heartbeat
	ID      uint64
	Kind    string // request
	Payload []byte // request, reply; error: the message
}

var errControl = errors.New("broker: malformed control message")

// appendControl appends the encoding of c to b.
func appendControl(b []byte, c control) []byte {
	b = append(b, controlMagic, byte(c.Type))
	switch c.Type {
	case controlHeartbeat:
		return append(b, c.Flags)
	case controlRequest:
		b = binary.AppendUvarint(b, c.ID)
		b = binary.AppendUvarint(b, uint64(len(c.Kind)))
		b = append(b, c.Kind...)
	default:
		b = binary.AppendUvarint(b, c.ID)
	}
	return append(b, c.Payload...)
}

// parseControl decodes a control message. The result aliases b.
func parseControl(b []byte) (control, error) {
	if len(b) < 2 || b[0] != controlMagic {
		return control{}, fmt.Errorf("%w: no header", errControl)
	}
	c := control{Type: controlType(b[1])}
	b = b[2:]
	switch c.Type {
	case controlHeartbeat:
		if len(b) != 1 {
			return control{}, fmt.Errorf("%w: heartbeat of %d bytes", errControl, len(b))
		}
		c.Flags = b[0]
		return c, nil
	case controlRequest, controlReply, controlError:
	default:
		return control{}, fmt.Errorf("%w: type %d", errControl, c.Type)
	}
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return control{}, fmt.Errorf("%w: bad id", errControl)
	}
	c.ID, b = id, b[n:]
	if c.Type == controlRequest {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > maxKindLen || l > uint64(len(b)-n) {
			return control{}, fmt.Errorf("%w: bad kind length", errControl)
		}
		c.Kind, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) > 0 {
		c.Payload = b
	}
	return c, nil
}
