package herald

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/herald-go/herald/internal/writers"
	"github.com/herald-go/herald/websocket"
)

// writerPool sends what publications, broadcasts, updates and heartbeats queue on sockets
// whose own goroutines are not sending: a few long-lived writers (GOMAXPROCS*4 at most, each
// exiting after writerLinger idle) instead of a goroutine per delivery. A writer that spends
// writerStuck in one socket's write is replaced, so a slow socket never holds up the others.
var writerPool = writers.New(0, writerLinger, writerStuck)

const (
	writerLinger = 50 * time.Millisecond
	writerStuck  = 2 * time.Millisecond
)

// socketTask runs a socket's flush on a writer of the pool.
type socketTask Socket

func (t *socketTask) Run(w *writers.Worker) { (*Socket)(t).flushOn(w) }

// Stuck bounds a send that blocked a writer of the pool (writers.Stuck).
func (t *socketTask) Stuck() { (*Socket)(t).boundSend() }

// taskBatch collects the sockets a delivery found with nobody sending, so that they are
// handed to the writers under one lock.
type taskBatch struct{ tasks []writers.Task }

var taskBatches = sync.Pool{New: func() any { return new(taskBatch) }}

// flushBatch is how many sockets a delivery collects before handing them over: the writers
// start on the first ones while the rest are queued.
const flushBatch = 64

func (b *taskBatch) add(s *Socket) {
	b.tasks = append(b.tasks, (*socketTask)(s))
	if len(b.tasks) == flushBatch {
		b.submit()
	}
}

func (b *taskBatch) submit() {
	writerPool.SubmitAll(b.tasks)
	clear(b.tasks)
	b.tasks = b.tasks[:0]
}

// delivery is one message delivered to many sockets: encoded once, and prepared once (framed,
// and compressed once per deflate setting that allows it) for the sockets whose transport can
// send prepared messages.
type delivery struct {
	data []byte
	pm   *websocket.PreparedMessage
}

func newDelivery(data []byte) delivery {
	pm, err := websocket.NewPreparedMessage(websocket.MessageText, data)
	if err != nil {
		pm = nil // cannot happen: the type is MessageText
	}
	return delivery{data: data, pm: pm}
}

// deliverPublication delivers a publication on path (matched by sub, with params) to this
// node's subscribers: raw is message encoded. Filters run here, where the sockets are.
func (s *Server) deliverPublication(sub *subscription, path string, params map[string]string, message any, raw json.RawMessage, o PublishOptions) error {
	msg, err := encode(pushPub{Type: "pub", Path: path, Message: raw})
	if err != nil {
		return err
	}
	d := newDelivery(msg)
	b := taskBatches.Get().(*taskBatch)
	defer taskBatches.Put(b)
	defer b.submit()
	for _, sock := range sub.targets(path, o.User) {
		out := d
		if f := sub.opts.Filter; f != nil {
			deliver, override, ok := sock.filter(f, path, message, FilterInfo{
				Socket: sock, Credentials: sock.credentials(), Params: params, Internal: o.Internal})
			if !ok || !deliver {
				continue
			}
			if override != nil {
				oraw, err := marshalValue(override)
				if err != nil {
					continue
				}
				omsg, err := encode(pushPub{Type: "pub", Path: path, Message: oraw})
				if err != nil {
					continue
				}
				out = delivery{data: omsg}
			}
		}
		if sock.queueMessage(outgoing{data: out.data, pm: out.pm, push: true}) {
			b.add(sock)
		}
	}
	return nil
}

// deliverBroadcast delivers an update (raw is the message encoded) to this node's sockets, or
// to user's when user is set.
func (s *Server) deliverBroadcast(raw json.RawMessage, user string) error {
	msg, err := encode(pushUpdate{Type: "update", Message: raw})
	if err != nil {
		return err
	}
	d := newDelivery(msg)
	b := taskBatches.Get().(*taskBatch)
	defer taskBatches.Put(b)
	defer b.submit()
	for _, sock := range s.socketsSnapshot(user) {
		if sock.helloed() && sock.queueMessage(outgoing{data: d.data, pm: d.pm, push: true}) {
			b.add(sock)
		}
	}
	return nil
}
