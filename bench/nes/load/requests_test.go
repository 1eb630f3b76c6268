package main

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/herald-go/herald/bench/internal/fanload"
	"github.com/herald-go/herald/bench/internal/wsraw"
)

// scripted is a nes connection whose server answers each request with reply(id) and sends
// a heartbeat ping before the third; it ends the run after max requests.
type scripted struct {
	reply   func(id int64) string
	nextID  int64
	queue   []string
	sent    []string
	max     int
	stop    *atomic.Bool
	replies int
}

func (s *scripted) send(typ string, body func([]byte) []byte) (int64, error) {
	s.nextID++
	s.sent = append(s.sent, string(fanload.NesMessage(nil, typ, s.nextID, body)))
	if typ == "request" {
		if s.replies == 2 {
			s.queue = append(s.queue, `{"type":"ping","id":7}`)
		}
		s.replies++
		s.queue = append(s.queue, s.reply(s.nextID))
	}
	return s.nextID, nil
}

func (s *scripted) read() ([]byte, error) {
	if s.replies > s.max {
		s.stop.Store(true)
		return nil, errors.New("closed")
	}
	m := s.queue[0]
	s.queue = s.queue[1:]
	return []byte(m), nil
}

func (s *scripted) Close() {}

func run(reply func(id int64) string) (int64, *scripted, error) {
	var stop atomic.Bool
	var n wsraw.Counter
	s := &scripted{reply: reply, max: 5, stop: &stop}
	err := requestLoop(s, 1, &n, &stop)
	return n.Load(), s, err
}

func TestRequestLoop(t *testing.T) {
	n, s, err := run(func(id int64) string {
		return fmt.Sprintf(`{"type":"request","id":%d,"statusCode":200,"payload":"world!","headers":{}}`, id)
	})
	if err != nil || n != 5 {
		t.Fatalf("%d replies counted, %v; want 5", n, err)
	}
	if pongs := strings.Count(strings.Join(s.sent, "\n"), `"type":"ping"`); pongs != 1 {
		t.Errorf("%d heartbeat answers, want 1: %q", pongs, s.sent)
	}
	for name, reply := range map[string]func(int64) string{
		"another id": func(id int64) string {
			return fmt.Sprintf(`{"type":"request","id":%d,"statusCode":200,"payload":"world!"}`, id+1)
		},
		"a 404": func(id int64) string { return fmt.Sprintf(`{"type":"request","id":%d,"statusCode":404}`, id) },
		"another answer": func(id int64) string {
			return fmt.Sprintf(`{"type":"request","id":%d,"statusCode":200,"payload":"x"}`, id)
		},
		"another type": func(id int64) string { return fmt.Sprintf(`{"type":"pub","id":%d}`, id) },
	} {
		if n, _, err := run(reply); err == nil || n != 0 {
			t.Errorf("%s: %d replies counted, error %v; want none and an error", name, n, err)
		}
	}
}
