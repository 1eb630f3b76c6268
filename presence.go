package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// PresenceEvent is the message of the publications that tell a path's subscribers who joined
// and left it (SubscriptionOptions.PresenceEvents). Clients receive it as a publication on
// the path, encoded as
//
//	{"presence":"join","socket":"<socket id>","user":"<Credentials.User>"}
//
// ("leave" for a socket that unsubscribed, was revoked or closed; user is absent for
// anonymous sockets).
type PresenceEvent struct {
	Presence string `json:"presence"`       // "join" or "leave"
	Socket   string `json:"socket"`         // the socket's id (Socket.ID)
	User     string `json:"user,omitempty"` // its Credentials.User; empty for an anonymous socket
}

// Presence is who is subscribed to a path, on every node that answered.
type Presence struct {
	// Path is the path asked about.
	Path string
	// Entries lists the subscribed sockets, sorted by node, then socket id.
	Entries []PresenceEntry
	// Users lists the distinct users among them, sorted (anonymous sockets are only in
	// Entries and Sockets).
	Users []string
	// Sockets counts the entries.
	Sockets int
	// Missing lists the nodes known to be alive that did not answer in time: their
	// subscribers are absent. The subscribers of a node that died are simply absent: its
	// entries go with it.
	Missing []string
}

// PresenceEntry is one socket subscribed to a path.
type PresenceEntry struct {
	Node   string `json:"node,omitempty"` // empty without a broker
	Socket string `json:"socket"`         // the socket's id (Socket.ID)
	User   string `json:"user,omitempty"` // its Credentials.User; empty for an anonymous socket
}

// Presence returns the subscribers of path (a concrete path, such as "/room/5") on every
// node sharing Options.Broker, or on this server without one. It waits for every node known
// alive to answer, or for ctx (without a deadline, 2 s), and says which nodes did not.
func (s *Server) Presence(ctx context.Context, path string) (Presence, error) {
	if path == "" || path[0] != '/' {
		return Presence{}, fmt.Errorf("herald: invalid presence path %q", path)
	}
	p := Presence{Path: path}
	if s.cluster == nil {
		p.Entries = s.localPresence(path, "")
	} else {
		replies, missing, err := s.cluster.survey(ctx, surveyPresence, []byte(path))
		if err != nil {
			return Presence{}, err
		}
		p.Missing = missing
		for n, raw := range replies {
			var entries []PresenceEntry
			if err := json.Unmarshal(raw, &entries); err != nil {
				p.Missing = append(p.Missing, n)
				continue
			}
			for i := range entries {
				entries[i].Node = n
			}
			p.Entries = append(p.Entries, entries...)
		}
		slices.Sort(p.Missing)
	}
	slices.SortFunc(p.Entries, func(a, b PresenceEntry) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Socket, b.Socket)
	})
	p.Sockets = len(p.Entries)
	for _, e := range p.Entries {
		if e.User != "" {
			p.Users = append(p.Users, e.User)
		}
	}
	slices.Sort(p.Users)
	p.Users = slices.Compact(p.Users)
	return p, nil
}

// localPresence lists this node's subscribers of path.
func (s *Server) localPresence(path, node string) []PresenceEntry {
	sub, _, ok := s.subs.match(path)
	if !ok {
		return nil
	}
	return sub.presence(path, node)
}

// answerPresence answers another node's Presence survey.
func (c *cluster) answerPresence(_ context.Context, _ string, payload []byte) ([]byte, error) {
	entries := c.s.localPresence(string(payload), "")
	if entries == nil {
		entries = []PresenceEntry{}
	}
	return json.Marshal(entries)
}

// presenceEvent queues the event of sock joining or leaving path, for a subscription with
// PresenceEvents. It runs under the socket's lock and never waits: the event is published
// (or, without a broker, delivered) by the server's presence queue, in order. Past the
// queue's bound, events are dropped (and counted).
func (s *Server) presenceEvent(path, what, socket, user string) {
	raw, err := json.Marshal(PresenceEvent{Presence: what, Socket: socket, User: user})
	if err != nil {
		return
	}
	ok := s.presence.pushOrDrop(func() {
		if s.cluster == nil {
			s.deliverPresence(path, raw)
			return
		}
		if err := s.cluster.publish("p:"+path, &envelope{kind: kindPresence, path: path, message: raw}); err != nil {
			s.stats.presenceDropped.Add(1)
			s.log.Warn("herald: cannot publish a presence event", "path", path, "err", err)
		}
	}, true)
	if !ok {
		s.stats.presenceDropped.Add(1)
	}
}

// deliverPresence delivers a presence event to this node's subscribers of path, without the
// subscription's filter.
func (s *Server) deliverPresence(path string, raw []byte) {
	sub, _, ok := s.subs.match(path)
	if !ok {
		return
	}
	msg, err := encode(pushPub{Type: "pub", Path: path, Message: raw})
	if err != nil {
		return
	}
	deliverPush(sub.targets(path, ""), msg)
}
