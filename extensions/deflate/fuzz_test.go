package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"io"
	"testing"

	"github.com/herald-go/herald/extensions"
)

// fuzzLimit is the message limit of the fuzzed sessions: small, so that bombs are found and
// cut quickly.
const fuzzLimit = 4096

// stdInflate inflates one permessage-deflate payload with the standard library, with dict as
// the window the previous messages left, reading at most limit+1 bytes. whole reports whether
// the inflater used every byte of the payload (a final block in the middle leaves some).
func stdInflate(payload, dict []byte, limit int) (out []byte, whole bool, err error) {
	in := bytes.NewReader(append(append(bytes.Clone(payload), deflateTail...), finalBlock...))
	r := stdflate.NewReaderDict(in, dict) // a *bytes.Reader is read byte by byte: no read-ahead
	out, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	return out, len(payload)+len(deflateTail)+len(finalBlock)-in.Len() >= len(payload), err
}

// FuzzDecodeAgainstStdlib decodes two messages of one connection (the second may refer back
// to the first, as context takeover allows) and holds each result to compress/flate's: a
// message the standard inflater expands past the limit is refused with ErrTooBig, one it
// refuses or ends early (a final block in the middle) is refused, and every other is decoded
// to exactly the standard inflater's bytes.
func FuzzDecodeAgainstStdlib(f *testing.F) {
	_, cli := pair(f, Options{}, Options{})
	enc := func(s string) []byte {
		m := &extensions.Message{Data: []byte(s)}
		if err := cli.Encode(m); err != nil {
			f.Fatal(err)
		}
		return m.Data
	}
	first, second := enc("the first message, which the second refers to. "), enc("the first message, which the second refers to, again")
	f.Add(first, second)
	f.Add(bytes.Repeat([]byte{0}, 8), []byte{0x00})
	var bomb bytes.Buffer
	w, _ := stdflate.NewWriter(&bomb, stdflate.BestCompression)
	_, _ = w.Write(make([]byte, 64<<10))
	_ = w.Flush()
	f.Add(bytes.TrimSuffix(bomb.Bytes(), deflateTail), []byte{0x02, 0x00}) // 64 KiB of zeros, then an empty message
	_ = w.Close()
	f.Add(bomb.Bytes(), first) // a final block, then the tail: allowed at the end
	f.Fuzz(func(t *testing.T, a, b []byte) {
		srv, _ := pair(t, Options{}, Options{})
		var dict []byte
		for i, payload := range [][]byte{a, b} {
			m := &extensions.Message{RSV: extensions.RSV1, Data: bytes.Clone(payload), Limit: fuzzLimit}
			err := srv.Decode(m)
			want, whole, refErr := stdInflate(payload, dict, fuzzLimit)
			switch {
			case refErr == nil && len(want) > fuzzLimit:
				if !errors.Is(err, extensions.ErrTooBig) {
					t.Fatalf("message %d (% x) inflates past the limit, and Decode said %v", i, payload, err)
				}
			case refErr != nil || !whole:
				if err == nil {
					t.Fatalf("message %d (% x): compress/flate says %v (used it whole: %v), Decode accepted it", i, payload, refErr, whole)
				}
			case err != nil:
				t.Fatalf("message %d (% x): Decode refused what compress/flate inflates to %q: %v", i, payload, want, err)
			case !bytes.Equal(m.Data, want):
				t.Fatalf("message %d (% x): Decode gave %q, compress/flate %q", i, payload, m.Data, want)
			}
			if err != nil {
				return // the connection is failed: nothing follows
			}
			dict = append(dict, m.Data...)
		}
	})
}
