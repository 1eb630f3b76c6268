package websocket

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// checkSplit feeds b to a utf8Checker in pieces cut at the given points and reports whether it
// accepted the whole.
func checkSplit(b []byte, cuts []int) bool {
	var u utf8Checker
	prev := 0
	for _, c := range cuts {
		if !u.write(b[prev:c]) {
			return false
		}
		prev = c
	}
	return u.write(b[prev:]) && u.done()
}

func TestUTF8CheckerAgreesWithStdlib(t *testing.T) {
	t.Parallel()
	samples := [][]byte{
		[]byte("hello"), []byte("κόσμε"), []byte("🌍 and 中文"), {},
		{0xed, 0xa0, 0x80}, {0xf4, 0x90, 0x80, 0x80}, {0xc0, 0xaf}, {0xe0, 0x80, 0xaf},
		{0xf8, 0x88, 0x80, 0x80, 0x80}, {0x80}, {0xce}, {0xce, 0xba, 0xe1}, {0xef, 0xbf, 0xbf},
		{0xf0, 0x90, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}, {0xed, 0x9f, 0xbf}, {0xee, 0x80, 0x80},
	}
	for _, s := range samples {
		want := utf8.Valid(s)
		for i := 0; i <= len(s); i++ {
			for j := i; j <= len(s); j++ {
				if got := checkSplit(s, []int{i, j}); got != want {
					t.Errorf("% x cut at %d,%d: got %v, want %v", s, i, j, got, want)
				}
			}
		}
	}
}

func TestUTF8CheckerFailsFast(t *testing.T) {
	t.Parallel()
	// Each prefix can never start valid UTF-8: the checker must say so before the rest comes.
	for _, prefix := range [][]byte{
		{0xf4, 0x90},             // above U+10FFFF
		{0xed, 0xa0},             // a surrogate
		{0xe0, 0x80},             // overlong
		{0xc0},                   // overlong lead byte
		{0xf5},                   // lead byte beyond U+10FFFF
		{'a', 0x80},              // lone continuation byte
		{0xce, 0xba, 0xf4, 0x90}, // valid text, then an impossible sequence
	} {
		var u utf8Checker
		if u.write(prefix) {
			t.Errorf("% x accepted", prefix)
		}
	}
	var u utf8Checker
	if !u.write([]byte{0xf0, 0x9f}) || u.done() {
		t.Error("a valid, incomplete character must be waited for")
	}
}

func FuzzUTF8Checker(f *testing.F) {
	f.Add([]byte("κόσμε🌍"), uint8(3))
	f.Add([]byte{0xed, 0xa0, 0x80}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, seed uint8) {
		r := rand.New(rand.NewPCG(uint64(seed), 0))
		var cuts []int
		for i := 1; i < len(b); i++ {
			if r.IntN(3) == 0 {
				cuts = append(cuts, i)
			}
		}
		if got, want := checkSplit(b, cuts), utf8.Valid(b); got != want {
			t.Fatalf("% x cuts %v: got %v, want %v", b, cuts, got, want)
		}
	})
}
