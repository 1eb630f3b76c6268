//go:build !linux

package eventsource

// takeOverIdle reports false: Options.IdleMode needs Linux's epoll.
func (es *EventSource) takeOverIdle() bool { return false }

// watchIdle is never called on this platform.
func (es *EventSource) watchIdle() {}
