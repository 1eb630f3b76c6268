package eventsource_test

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

// parsed is what a stream gives a client: its events, last event id and reconnection time.
type parsed struct {
	Msgs     []eventsource.Message
	LastID   string
	Retry    time.Duration
	HasRetry bool
}

// referenceParse interprets a whole event stream with the steps of the WHATWG HTML standard
// (9.2.6 "Interpreting an event stream"), written as plainly as possible: the oracle for the
// Decoder, which reads incrementally, with bounds.
func referenceParse(stream, lastID string) parsed {
	var p parsed
	stream = strings.TrimPrefix(stream, "\xef\xbb\xbf")
	var lines []string
	for {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			break // the last line has no end: it is not a line
		}
		lines = append(lines, stream[:i])
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
	}
	var data strings.Builder
	typ, idBuf := "", lastID
	p.LastID = lastID
	for _, line := range lines {
		switch {
		case line == "":
			p.LastID = idBuf
			if data.Len() == 0 {
				typ = ""
				continue
			}
			if typ == "" {
				typ = "message"
			}
			p.Msgs = append(p.Msgs, eventsource.Message{Type: typ, ID: p.LastID, Data: strings.TrimSuffix(data.String(), "\n")})
			data.Reset()
			typ = ""
		case line[0] == ':':
		default:
			name, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch name {
			case "event":
				typ = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			case "id":
				if !strings.Contains(value, "\x00") {
					idBuf = value
				}
			case "retry":
				if value != "" && strings.Trim(value, "0123456789") == "" {
					if ms, err := strconv.ParseInt(value, 10, 64); err == nil && ms <= int64(1<<63-1)/int64(time.Millisecond) {
						p.Retry, p.HasRetry = time.Duration(ms)*time.Millisecond, true
					}
				}
			}
		}
	}
	return p
}

// chunkReader returns at most n bytes per Read, to cut lines and line endings anywhere.
type chunkReader struct {
	s string
	n int
}

func (r *chunkReader) Read(b []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(len(b), r.n, len(r.s))
	copy(b, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

// decodeAll reads a stream with the Decoder, chunk bytes at a time.
func decodeAll(stream, lastID string, chunk, limit int) (parsed, error) {
	d := eventsource.NewDecoder(&chunkReader{s: stream, n: chunk}, limit, lastID)
	var p parsed
	for {
		m, err := d.Next()
		if err != nil {
			p.LastID = d.LastEventID()
			p.Retry, p.HasRetry = d.Retry()
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return p, err
		}
		p.Msgs = append(p.Msgs, m)
	}
}

var parseCases = []struct {
	name   string
	stream string
	lastID string
}{
	{"simple", "data: hello\n\n", ""},
	{"typed with id", "event: add\nid: 7\ndata: x\n\n", ""},
	{"multi-line", "data: a\ndata\ndata:  b\ndata:\n\n", ""},
	{"line endings", "data: a\r\ndata: b\rdata: c\n\r\n\rdata: d\r\r", ""},
	{"crlf split", "data: a\r", ""},
	{"comments", ": ping\n\n:\ndata: x\n\n", ""},
	{"no data no event", "event: x\nid: 3\n\ndata: y\n\n", ""},
	{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", ""},
	{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", ""},
	{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", ""},
	{"resume id", "data: a\n\n", "41"},
	{"unterminated event dropped", "data: a\n\ndata: b\n", ""},
	{"unterminated id not committed", "data: a\n\nid: 9\n", "1"},
	{"bom", "\xef\xbb\xbfdata: bom\n\n", ""},
	{"only one bom", "\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", ""},
	{"retry", "retry: 1500\n\nretry: 12x\n\nretry: -5\n\n", ""},
	{"retry zero", "retry: 0\n\n", ""},
	{"retry overflow", "retry: 99999999999999999999\n\n", ""},
	{"unknown fields", "foo: bar\ndatax: 1\nData: 2\ndata: ok\n\n", ""},
	{"colon in value", "data: a: b\n\n", ""},
	{"no space", "data:x\nevent:y\n\n", ""},
	{"empty", "", ""},
	{"blank lines", "\n\n\r\n\r", ""},
	{"invalid utf-8", "data: \xff\xfe\n\n", ""},
	{"nul in data", "data: a\x00b\n\n", ""},
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			want := referenceParse(c.stream, c.lastID)
			for _, chunk := range []int{1, 2, 3, 7, 4096} {
				got, err := decodeAll(c.stream, c.lastID, chunk, 0)
				require.NoError(t, err)
				assert.Equal(t, want, got, "chunk %d", chunk)
			}
		})
	}
	// Spot checks of the oracle itself, against the standard's own examples.
	p := referenceParse("data: YHOO\ndata: +2\ndata: 10\n\n", "")
	assert.Equal(t, "YHOO\n+2\n10", p.Msgs[0].Data)
	p = referenceParse("data\n\ndata\ndata\n\ndata:", "")
	assert.Equal(t, []eventsource.Message{{Type: "message", Data: ""}, {Type: "message", Data: "\n"}}, p.Msgs)
	p = referenceParse("data:test\n\ndata: test\n\n", "")
	assert.Equal(t, p.Msgs[0].Data, p.Msgs[1].Data)
}

func TestDecoderLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("z", 100<<10)
	cases := []struct {
		name   string
		stream string
		limit  int
		ok     bool
	}{
		{"event over 64 KiB within the limit", "data: " + big + "\n\n", 1 << 20, true},
		{"one long line", "data: " + big + "\n\n", 64 << 10, false},
		{"many lines", strings.Repeat("data: "+big[:1000]+"\n", 100) + "\n", 64 << 10, false},
		{"no line break at all", big + big, 64 << 10, false},
		{"long comment", ": " + big + "\ndata: x\n\n", 64 << 10, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeAll(c.stream, "", 4096, c.limit)
			if c.ok {
				require.NoError(t, err)
				require.Len(t, got.Msgs, 1)
				assert.Len(t, got.Msgs[0].Data, 100<<10)
				return
			}
			var tl *eventsource.EventTooLargeError
			require.ErrorAs(t, err, &tl)
			assert.Equal(t, c.limit, tl.Limit)
			assert.Contains(t, err.Error(), "MaxEventSize")
		})
	}
}

// FuzzParse checks the Decoder against the standard's steps (referenceParse) on any input,
// read in chunks of any size.
func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.stream, c.lastID, uint8(3))
	}
	f.Add("data: x\r\n\r\nid: 1\r\nevent: e\rdata\n\n", "", uint8(1))
	f.Fuzz(func(t *testing.T, stream, lastID string, chunk uint8) {
		if len(stream) > 16<<10 {
			return // long inputs read a byte at a time only slow the fuzzer down
		}
		if strings.ContainsAny(lastID, "\x00") {
			lastID = ""
		}
		want := referenceParse(stream, lastID)
		got, err := decodeAll(stream, lastID, int(chunk)+1, 1<<20)
		if err != nil {
			t.Fatalf("Decoder: %v", err)
		}
		if !assert.ObjectsAreEqual(want, got) {
			t.Fatalf("stream %q (chunks of %d):\nreference %+v\ndecoder   %+v", stream, int(chunk)+1, want, got)
		}
		// With a limit, either the same result or an *EventTooLargeError.
		got, err = decodeAll(stream, lastID, int(chunk)+1, 16)
		var tl *eventsource.EventTooLargeError
		if err != nil && !errors.As(err, &tl) {
			t.Fatalf("Decoder with a limit: %v", err)
		}
		for _, m := range got.Msgs {
			if len(m.Data) > 16 {
				t.Fatalf("event of %d bytes passed a limit of 16", len(m.Data))
			}
		}
	})
}
