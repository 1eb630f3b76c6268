// Package harness is what the orchestrators (cmd/bench, deflate, nes, broadcast, cluster,
// idle) share around their own measurements: the flags for pinning, quiet-machine waits and
// reruns ([Config]), building the binaries, starting a pinned server and its load client,
// reading the server's and the machine's CPU time over the client's measured window
// ([Config.Window], or [Config.WindowOf] for several server processes; an echo client's
// whole run: [Config.RunEcho] and [Config.Echoes], or [Config.Counts] for other units; a
// publishing client's: [Config.Publishes]), rerunning disturbed windows ([Quietly]), measuring idle memory
// ([Config.Idle]), and the parts of the reports that look the same in all of them (the
// heading, medians with spreads, ratios, size names, the load table).
//
// The child processes themselves and what /proc says about them are package proc's.
//
// # The protocol with the load clients
//
// A load client prints "start" when its measured window opens and a line beginning "stop "
// when it closes; the orchestrator reads the server's CPU time at each. In idle mode it
// prints "open N" once its connections are open, holds them until its standard input says
// "stop", and prints "closed dropped=N". A server prints "listening ADDR" (or "listening on
// http://ADDR", or "listening" and a bare port) once it listens.
package harness
