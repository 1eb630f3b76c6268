package herald

import "encoding/json"

// deliverPublication delivers a publication on path (matched by sub, with params) to this
// node's subscribers: raw is message encoded. Filters run here, where the sockets are.
func (s *Server) deliverPublication(sub *subscription, path string, params map[string]string, message any, raw json.RawMessage, o PublishOptions) error {
	msg, err := encode(pushPub{Type: "pub", Path: path, Message: raw})
	if err != nil {
		return err
	}
	for _, sock := range sub.targets(path, o.User) {
		out := msg
		if f := sub.opts.Filter; f != nil {
			deliver, override, ok := sock.filter(f, path, message, FilterInfo{
				Socket: sock, Credentials: sock.credentials(), Params: params, Internal: o.Internal})
			if !ok || !deliver {
				continue
			}
			if override != nil {
				oraw, err := marshalValue(override)
				if err != nil {
					continue
				}
				if out, err = encode(pushPub{Type: "pub", Path: path, Message: oraw}); err != nil {
					continue
				}
			}
		}
		sock.enqueue(outgoing{data: out, push: true})
	}
	return nil
}

// deliverBroadcast delivers an update (raw is the message encoded) to this node's sockets, or
// to user's when user is set.
func (s *Server) deliverBroadcast(raw json.RawMessage, user string) error {
	msg, err := encode(pushUpdate{Type: "update", Message: raw})
	if err != nil {
		return err
	}
	for _, sock := range s.socketsSnapshot(user) {
		if sock.helloed() {
			sock.enqueue(outgoing{data: msg, push: true})
		}
	}
	return nil
}
