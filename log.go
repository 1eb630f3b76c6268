package herald

import (
	"context"
	"log/slog"
)

// The keys of the attributes that every log line about a socket carries (Socket.logger), the
// same in every line, so that a log query can follow one socket, user or client.
const (
	logKeySocket    = "socket"    // Socket.ID
	logKeyUser      = "user"      // Credentials.User, once authenticated
	logKeyTransport = "transport" // websocket, sse or poll
	logKeyRemote    = "remote"    // the client's address, as the connection sees it
)

// logger returns the server's logger with the socket's attributes. No credential (token,
// cookie, ticket, header) is ever among them, nor in any line the server logs. It takes s.mu:
// callers must not hold it.
func (s *Socket) logger() *slog.Logger {
	if !s.server.log.Enabled(context.Background(), slog.LevelError) {
		return s.server.log // no output: spare the attributes
	}
	args := []any{logKeySocket, s.ID, logKeyTransport, s.transportName(), logKeyRemote, s.remoteAddr}
	if u := s.user(); u != "" {
		args = append(args, logKeyUser, u)
	}
	return s.server.log.With(args...)
}

// transportName names what carries the socket: "websocket", "sse" or "poll".
func (s *Socket) transportName() string {
	if m, ok := s.t.(*meteredTransport); ok {
		return m.kind.String()
	}
	return s.server.transportKind(s.t, s.req).String()
}
