package nats

import (
	"strconv"
	"strings"
	"testing"
)

// unescape undoes escapeToken, for the tests.
func unescape(tok string) (string, bool) {
	if tok == "%" {
		return "", true
	}
	var sb strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			if !tokenSafe(c) {
				return "", false
			}
			sb.WriteByte(c)
			continue
		}
		if i+3 > len(tok) {
			return "", false
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil || tokenSafe(byte(v)) {
			return "", false
		}
		sb.WriteByte(byte(v))
		i += 2
	}
	return sb.String(), true
}

func checkToken(t *testing.T, s string) {
	tok := escapeToken(s)
	if tok == "" || strings.ContainsAny(tok, ". \t\r\n*>") {
		t.Fatalf("escapeToken(%q) = %q: not one subject token", s, tok)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			t.Fatalf("escapeToken(%q) = %q: byte %#x", s, tok, tok[i])
		}
	}
	if back, ok := unescape(tok); !ok || back != s {
		t.Fatalf("escapeToken(%q) = %q, which reads back as %q (%v)", s, tok, back, ok)
	}
}

func TestEscapeToken(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "%"},
		{"p:/rooms/1", "p:/rooms/1"},
		{"a.b", "a%2Eb"},
		{"*", "%2A"},
		{">", "%3E"},
		{"%", "%25"},
		{"%25", "%2525"},
		{"a b", "a%20b"},
		{"é", "%C3%A9"},
	} {
		if got := escapeToken(c.in); got != c.want {
			t.Errorf("escapeToken(%q) = %q, want %q", c.in, got, c.want)
		}
		checkToken(t, c.in)
	}
}

// FuzzEscapeToken checks that any string becomes one valid token that reads back as itself
// (so two topics never share a subject).
func FuzzEscapeToken(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "%", "%2E", "..", "*>", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkToken(t, s) })
}
