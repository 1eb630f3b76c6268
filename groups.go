package herald

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// groups holds the sockets' named groups (Socket.Join). Server.mu is taken before its lock.
type groups struct {
	mu       sync.Mutex
	bySocket map[*Socket]map[string]struct{}
	byName   map[string]map[*Socket]struct{}
}

func newGroups() *groups {
	return &groups{bySocket: map[*Socket]map[string]struct{}{}, byName: map[string]map[*Socket]struct{}{}}
}

// members returns the sockets of a group on this node.
func (g *groups) members(name string) []*Socket {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Socket, 0, len(g.byName[name]))
	for sock := range g.byName[name] {
		out = append(out, sock)
	}
	return out
}

// of returns the groups of a socket, sorted.
func (g *groups) of(sock *Socket) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.bySocket[sock]) == 0 {
		return nil
	}
	out := make([]string, 0, len(g.bySocket[sock]))
	for name := range g.bySocket[sock] {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// add puts sock in a group, reporting false when it was there already.
func (g *groups) add(sock *Socket, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, in := g.bySocket[sock][name]; in {
		return false
	}
	if g.bySocket[sock] == nil {
		g.bySocket[sock] = map[string]struct{}{}
	}
	g.bySocket[sock][name] = struct{}{}
	if g.byName[name] == nil {
		g.byName[name] = map[*Socket]struct{}{}
	}
	g.byName[name][sock] = struct{}{}
	return true
}

// remove takes sock out of a group, reporting whether it was in it.
func (g *groups) remove(sock *Socket, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, in := g.bySocket[sock][name]; !in {
		return false
	}
	g.removeLocked(sock, name)
	return true
}

func (g *groups) removeLocked(sock *Socket, name string) {
	if delete(g.bySocket[sock], name); len(g.bySocket[sock]) == 0 {
		delete(g.bySocket, sock)
	}
	if delete(g.byName[name], sock); len(g.byName[name]) == 0 {
		delete(g.byName, name)
	}
}

// removeSocket takes a closed socket out of all its groups, returning them.
func (g *groups) removeSocket(sock *Socket) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	for name := range g.bySocket[sock] {
		names = append(names, name)
	}
	for _, name := range names {
		g.removeLocked(sock, name)
	}
	return names
}

// leaveGroups takes a socket that is being removed out of its groups (Server.removeSocket).
func (s *Server) leaveGroups(sock *Socket) {
	for _, name := range s.groups.removeSocket(sock) {
		if s.cluster != nil {
			s.cluster.release("g:" + name)
		}
	}
}

// Join puts the socket in a named group, which Server.BroadcastGroup reaches on every node.
// Call it at authentication (in Options.OnConnection) or any time later; joining a group
// twice is the same as once. A socket leaves its groups when it closes. With
// Options.Broker, Join returns once this node hears the group's broadcasts, and fails while
// the broker link is down.
func (s *Socket) Join(ctx context.Context, group string) error {
	if group == "" {
		return errors.New("herald: Socket.Join needs a group name")
	}
	srv := s.server
	if c := srv.cluster; c != nil {
		if err := c.hold(ctx, "g:"+group); err != nil {
			return &Error{StatusCode: 503, Message: "Service Unavailable", err: err}
		}
	}
	srv.mu.Lock()
	_, open := srv.sockets[s]
	added := open && srv.groups.add(s, group)
	srv.mu.Unlock()
	if !added && srv.cluster != nil {
		srv.cluster.release("g:" + group)
	}
	if !open {
		return ErrSocketClosed
	}
	return nil
}

// Leave takes the socket out of a group; a group it is not in is ignored.
func (s *Socket) Leave(group string) {
	if s.server.groups.remove(s, group) && s.server.cluster != nil {
		s.server.cluster.release("g:" + group)
	}
}

// Groups returns the groups the socket is in, sorted.
func (s *Socket) Groups() []string { return s.server.groups.of(s) }

// BroadcastGroup sends message as an update (the client's onUpdate) to every socket in group,
// on every node with Options.Broker. It never waits for a slow socket; with a broker it fails
// while the link is down.
func (s *Server) BroadcastGroup(group string, message any) error {
	if group == "" {
		return errors.New("herald: BroadcastGroup needs a group name")
	}
	raw, err := marshalValue(message)
	if err != nil {
		return err
	}
	if s.cluster != nil {
		return s.cluster.publish("g:"+group, &envelope{kind: kindGroup, path: group, message: raw})
	}
	s.deliverGroup(group, raw)
	return nil
}

// deliverGroup delivers an update to this node's members of group.
func (s *Server) deliverGroup(group string, raw []byte) {
	msg, err := encode(pushUpdate{Type: "update", Message: raw})
	if err != nil {
		s.log.Error("herald: cannot encode a group broadcast", "group", group, "err", err)
		return
	}
	deliverPush(s.groups.members(group), msg)
}

// deliverPush queues an encoded push (an update or publication) to sockets that said hello;
// it never waits.
func deliverPush(socks []*Socket, msg []byte) {
	for _, sock := range socks {
		if sock.helloed() {
			sock.enqueue(outgoing{data: msg, push: true})
		}
	}
}
