package eventsource

import (
	"errors"

	"github.com/herald-go/herald/internal/poller"
)

// takeOverIdle moves the connection New took over onto the poller (Options.IdleMode), or
// reports false when it cannot (TLS, a wrapped connection), leaving it as it was.
func (es *EventSource) takeOverIdle() bool {
	if es.fd < 0 {
		return false
	}
	pc, err := poller.NewConn(es.conn)
	if err != nil {
		return false
	}
	es.conn = pc
	_ = pc.Raw().Control(func(fd uintptr) { es.fd = int(fd) })
	return true
}

// watchIdle starts watching the connection on the poller: what watch does, without a
// goroutine while the client sends nothing.
func (es *EventSource) watchIdle() {
	es.conn.(*poller.Conn).Serve(idleWatch{es})
}

// idleWatch is watch as the poller runs it: Run reads what the client sent, if anything,
// and parks the connection again, until the client closes (or the lingering read deadline of
// a stream that ended passes).
type idleWatch struct{ es *EventSource }

func (w idleWatch) Run() {
	es := w.es
	pc := es.conn.(*poller.Conn)
	var b [64]byte
	for {
		pc.SetNoWait(true)
		_, err := pc.Read(b[:])
		pc.SetNoWait(false)
		if err == nil {
			continue // read and ignored, as watch does
		}
		if errors.Is(err, poller.ErrWouldBlock) {
			if pc.Park() {
				return
			}
			continue
		}
		break
	}
	pc.Finish()
	es.watchEnded() // as watch does when its read fails
}

// Timer is never set for a stream.
func (idleWatch) Timer() {}
