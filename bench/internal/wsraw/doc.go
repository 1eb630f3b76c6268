// Package wsraw is the benchmarks' raw WebSocket client, written by hand (no library) so that
// every server faces the same client: the opening handshake, masked client frames, server
// frame headers, pings and closes, whole messages, and the two ways the load clients use
// connections — a measured window over busy connections ([Run]) and idle connections held
// open ([DialAll], [Hold]). The load clients in cmd/load, deflate/load and nes/load are built
// on it; what they add is their own messages.
//
// A [Conn] is used by one goroutine at a time: the one that reads it also writes to it
// (answering pings included).
//
// Connections are closed with SO_LINGER 0, so that repeated runs leave no TIME_WAIT sockets
// behind.
package wsraw
