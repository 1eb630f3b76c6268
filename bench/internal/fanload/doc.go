// Package fanload is the fan-out load clients' shared core (bench/broadcast/load,
// bench/cluster/load, the fanout mode of bench/nes/load): WebSocket connections opened with
// [wsraw], then handed over ([TakeOver]) to raw non-blocking descriptors that one epoll loop
// ([Poller]) reads. A Go reader per connection would cost the client more per delivery than
// the server's own write to that socket, and its scheduling would land in the latencies; one
// loop that also sends the publishes needs no other goroutine in the measured part.
//
// [NesFanout] is the whole nes fan-out run (subscribers, a publisher, publishes one after
// another, each awaited on every subscriber) that the nes and cluster clients share; the
// nes message helpers ([AppendNes], [Field], [Number]) are shared with the nes client's other
// modes.
//
// Connections are closed with SO_LINGER 0, so repeated runs leave no TIME_WAIT behind.
package fanload
