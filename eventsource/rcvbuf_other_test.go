//go:build !unix && !windows

package eventsource_test

// setSmallReceiveBuffer does nothing where sockets have no options to set.
func setSmallReceiveBuffer(uintptr) {}
