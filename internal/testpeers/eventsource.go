package testpeers

import (
	"encoding/json"
	"testing"
	"time"
)

// ESLine is one line printed by eventsource-client.js (Node's eventsource) or
// eventsource-browser.js (Chromium's EventSource): see those scripts.
type ESLine struct {
	Kind     string            `json:"kind"` // browser, response, open, message, error
	N        int               `json:"n"`
	Status   int               `json:"status"`
	Protocol string            `json:"protocol"`
	Headers  map[string]string `json:"headers"`
	Type     string            `json:"type"`
	ID       string            `json:"id"`
	Data     string            `json:"data"`
	Message  string            `json:"message"`
	Version  string            `json:"version"`
}

// NextES returns the next line the script printed, decoded, failing the test after timeout.
func (p *Proc) NextES(t testing.TB, timeout time.Duration) ESLine {
	t.Helper()
	line := p.Line(t, timeout)
	var l ESLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("peer printed %q: %v", line, err)
	}
	return l
}

// WaitES returns the next line of the given kind, skipping others, failing the test after
// timeout.
func (p *Proc) WaitES(t testing.TB, timeout time.Duration, kind string) ESLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := p.NextES(t, time.Until(deadline))
		if l.Kind == kind {
			return l
		}
	}
}
