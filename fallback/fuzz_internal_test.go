package fallback

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzParseEventID splits event ids: it never panics, accepts only TICKET.DIGITS with a
// non-empty ticket, and takes back what eventID wrote.
func FuzzParseEventID(f *testing.F) {
	for _, id := range []string{"", ".", "a.", ".1", "a.1", "a.b.2", "AQx.18446744073709551615", "AQx.18446744073709551616",
		"t.-1", "t.+1", "t. 1", "t.0x10", "t.1_0", "t.007", "t.1\n", "\x00.\x00", "é.1"} {
		f.Add(id, uint64(7))
	}
	f.Fuzz(func(t *testing.T, id string, n uint64) {
		ticket, seq, ok := parseEventID(id)
		if ok {
			if ticket == "" {
				t.Fatalf("%q: empty ticket accepted", id)
			}
			digits := id[len(ticket)+1:]
			if id[:len(ticket)] != ticket || id[len(ticket)] != '.' || digits == "" || strings.Trim(digits, "0123456789") != "" {
				t.Fatalf("%q: accepted as %q, %d", id, ticket, seq)
			}
		}
		// What the server writes comes back whole, whatever the ticket holds.
		if id != "" {
			got, gotSeq, ok := parseEventID(id + "." + formatSeq(n))
			if !ok || got != id || gotSeq != n {
				t.Fatalf("%q with seq %d came back as %q, %d, %v", id, n, got, gotSeq, ok)
			}
		}
	})
}

// FuzzTicket verifies made-up tickets: verify never panics, and a ticket it accepts is the
// one spelling the signer gives (an altered ticket never names a session).
func FuzzTicket(f *testing.F) {
	s := ticketSigner{key: []byte("fuzz key")}
	var id [sessionIDLen]byte
	copy(id[:], "0123456789abcdef")
	good := s.sign("node", id)
	f.Add(good)
	f.Add(good[:len(good)-1] + "x")
	f.Add(s.sign("", id))
	f.Add(s.sign(strings.Repeat("n", maxNodeLen), id))
	f.Add("")
	f.Add("AQ")
	f.Add(good + "=")
	f.Fuzz(func(t *testing.T, ticket string) {
		node, id, err := s.verify(ticket)
		if err != nil {
			return
		}
		if again := s.sign(node, id); again != ticket {
			t.Fatalf("%q verified, but the signer spells it %q", ticket, again)
		}
	})
}

// FuzzPost posts arbitrary bodies to a session's send and poll endpoints: no panic, only the
// statuses the protocol lists, and a batch changes the session only when it is the next one
// and within the limits, adding exactly its messages.
func FuzzPost(f *testing.F) {
	for _, seed := range []struct {
		endpoint    string
		contentType string
		body        string
	}{
		{EndpointSend, "application/json", `{"seq":1,"messages":["a","b"]}`},
		{EndpointSend, "application/json", `{"seq":1,"messages":["a"],"ack":1,"close":true}`},
		{EndpointSend, "application/json", `{"seq":2,"messages":["a"]}`},
		{EndpointSend, "application/json", `{"seq":0,"messages":[]}`},
		{EndpointSend, "application/json", `{"seq":1,"messages":["a","b","c","d","e"]}`},
		{EndpointSend, "application/json", `{"seq":1,"messages":[1]}`},
		{EndpointSend, "application/json", `{"seq":1,"messages":["` + strings.Repeat("x", 300) + `"]}`},
		{EndpointSend, "application/json; charset=utf-8", `{"seq":1,"messages":["\ud800","\u0000"]}`},
		{EndpointSend, "application/json", `{"seq":18446744073709551615,"messages":[]}`},
		{EndpointSend, "application/json", `{"seq":1,"messages":null,"ack":18446744073709551615}`},
		{EndpointSend, "application/json", `{"seq":1}{"seq":2}`},
		{EndpointSend, "application/json", ``},
		{EndpointSend, "text/plain", `{"seq":1,"messages":["a"]}`},
		{EndpointSend, "multipart/form-data; boundary=x", `--x--`},
		{EndpointSend, "application/json; =", `{}`},
		{EndpointPoll, "application/json", `{"last":0}`},
		{EndpointPoll, "application/json", `{"last":1}`},
		{EndpointPoll, "application/json", `{"last":5}`},
		{EndpointPoll, "application/json", `{"last":-1}`},
		{EndpointPoll, "application/json", `null`},
	} {
		f.Add(seed.endpoint, seed.contentType, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, endpoint, contentType string, body []byte) {
		if endpoint != EndpointSend && endpoint != EndpointPoll {
			return
		}
		srv, err := NewServer(&Options{Accept: func(*Session) {}, MaxBody: 256, MaxMessages: 4, InboxBytes: 200,
			PollTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		open := httptest.NewRequest(http.MethodPost, "/nes/poll", nil)
		s := srv.newSession(open)
		if err := s.Send(t.Context(), []byte("down")); err != nil {
			t.Fatal(err)
		}

		req := httptest.NewRequest(http.MethodPost, "/nes/"+endpoint, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Herald-Ticket", s.ticket)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)

		s.mu.Lock()
		inbox, inSeq := len(s.inbox), s.inSeq
		s.mu.Unlock()
		allowed := map[int]bool{200: endpoint == EndpointPoll, 204: endpoint == EndpointSend, 400: true, 409: endpoint == EndpointSend,
			410: true, 413: true, 415: true, 503: endpoint == EndpointSend}
		if !allowed[w.Code] {
			t.Fatalf("%s %q %q: status %d: %s", endpoint, contentType, body, w.Code, w.Body)
		}
		if w.Code != 200 && w.Code != 204 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", w.Code, w.Body)
		}
		var b batch
		applies := endpoint == EndpointSend && w.Code == 204 && json.Unmarshal(body, &b) == nil && b.Seq == 1
		switch {
		case applies && (inSeq != 2 || inbox != len(b.Messages)):
			t.Fatalf("%q applied as inSeq %d with %d messages", body, inSeq, inbox)
		case !applies && (inSeq != 1 || inbox != 0):
			t.Fatalf("%q (status %d) changed the session: inSeq %d, %d messages", body, w.Code, inSeq, inbox)
		case applies:
			for i, m := range b.Messages {
				if string(s.inbox[i]) != m {
					t.Fatalf("message %d is %q, sent %q", i, s.inbox[i], m)
				}
			}
		}
		if endpoint == EndpointPoll && w.Code == 200 {
			var ans struct {
				Events []pollEvent `json:"events"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Events == nil {
				t.Fatalf("poll answer %q", w.Body)
			}
		}
	})
}

// FuzzJSONLen checks the Go client's count of a message's size in a batch against
// encoding/json: never less, and the same but for \b and \f (counted as \u0008, \u000c).
func FuzzJSONLen(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "<>&", "\x00\x1f\b\f\n\r\t", "é世🙂", "\u2028\u2029", "\xff\xfe", "\xe2\x80", "a\xc3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		want, err := json.Marshal(string(s))
		if err != nil {
			t.Fatal(err)
		}
		got := jsonLen(s)
		slack := 4 * (strings.Count(string(s), "\b") + strings.Count(string(s), "\f"))
		if got < len(want) || got > len(want)+slack {
			t.Fatalf("jsonLen(%q) = %d, encoding/json writes %d: %s", s, got, len(want), want)
		}
	})
}
