//go:build !unix

package eventsource

import "net"

// socketFD returns -1: outside Unix, every write goes through a writer goroutine.
func socketFD(net.Conn) int { return -1 }

func writeNow(int, []byte) (int, error) { return 0, nil }
