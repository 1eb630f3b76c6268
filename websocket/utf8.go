package websocket

import "unicode/utf8"

// utf8Checker validates UTF-8 that arrives in pieces, failing as soon as the bytes seen can no
// longer begin valid UTF-8 (RFC 6455 §8.1 asks for this "fail fast" behaviour), even in the
// middle of a character split across frames.
type utf8Checker struct {
	pending [utf8.UTFMax]byte // an incomplete character carried over from the previous piece
	n       uint8
}

// write checks p as the continuation of everything written before. It reports false once the
// text is invalid.
func (u *utf8Checker) write(p []byte) bool {
	for u.n > 0 && len(p) > 0 {
		u.pending[u.n] = p[0]
		u.n++
		p = p[1:]
		switch seqState(u.pending[:u.n]) {
		case seqComplete:
			u.n = 0
		case seqInvalid:
			return false
		}
	}
	if len(p) == 0 {
		return true
	}
	cut := len(p)
	// A character may be cut off at the end: look back for its first byte.
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		b := p[i]
		if b < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(b) {
			if seqState(p[i:]) == seqPartial {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	u.n = uint8(copy(u.pending[:], p[cut:]))
	return true
}

// done reports whether the text ended on a character boundary.
func (u *utf8Checker) done() bool { return u.n == 0 }

const (
	seqInvalid = iota
	seqPartial
	seqComplete
)

// seqState classifies s, which starts with the first byte of a multi-byte character: a whole
// valid character, a valid beginning of one, or neither. The ranges are those of the Unicode
// Standard's table 3-7 (no overlong forms, no surrogates, nothing above U+10FFFF).
func seqState(s []byte) int {
	b := s[0]
	var size int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case b >= 0xC2 && b <= 0xDF:
		size = 2
	case b == 0xE0:
		size, lo = 3, 0xA0
	case b >= 0xE1 && b <= 0xEC, b == 0xEE, b == 0xEF:
		size = 3
	case b == 0xED:
		size, hi = 3, 0x9F
	case b == 0xF0:
		size, lo = 4, 0x90
	case b >= 0xF1 && b <= 0xF3:
		size = 4
	case b == 0xF4:
		size, hi = 4, 0x8F
	default:
		return seqInvalid
	}
	if len(s) > size {
		s = s[:size]
	}
	for i, x := range s[1:] {
		if i == 0 && (x < lo || x > hi) || i > 0 && (x < 0x80 || x > 0xBF) {
			return seqInvalid
		}
	}
	if len(s) == size {
		return seqComplete
	}
	return seqPartial
}
