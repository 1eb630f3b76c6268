// Package soak holds herald's soak and fault suite, as a test: TestSoak runs a nes server in
// this process and loads it over every transport (raw WebSocket frames, and the Go client over
// WebSocket, EventSource with POSTs, and long-polling) through six phases — connect and fan
// out, churn, slow and vanishing consumers, hostile frames and nes messages, reconnect storms,
// publish and subscribe storms — counting every message lost or repeated, and checking after
// each phase that goroutines, the live heap, RSS and file descriptors have come back to where
// they started. It prints a table of what each phase did.
//
// `go test ./soak` (and so `make test`) runs the short version, a few hundred connections in
// well under a minute; `make soak` runs the long one, thousands of connections per transport
// for minutes:
//
//	go test -count=1 -timeout 30m -v -run TestSoak ./soak -soak.long
//
// README.md beside this file says what each phase does, what it checks and within which bounds,
// and shows the table of a long run.
package soak
