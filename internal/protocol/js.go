package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSString renders a raw JSON value the way JavaScript's String() does: a string as itself,
// null as "null", an object as "[object Object]", a number as Number.prototype.toString writes
// it (1e+21, 1e-7, Infinity), and an array as Array.prototype.join(",") writes it, its null
// elements empty and its nested arrays joined in turn ([["a",null],[]] is "a,,"). The reference
// turns header values and error messages into strings this way.
//
// It takes time linear in len(raw), whatever the nesting (a nested array costs no more than a
// flat one: joining at every level is joining the flattened elements), and its result is at
// most a few times longer than raw ({} is 2 bytes, "[object Object]" 15). raw should be valid
// JSON (what Decode gives); anything else gives some string, never a panic.
func JSString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "undefined"
	}
	switch raw[0] {
	case '"':
		s, _ := String(raw)
		return s
	case '{':
		return "[object Object]"
	case '[':
		return jsJoin(raw)
	}
	return jsScalar(raw)
}

// jsJoin renders an array, iteratively: every '[' and ']' is dropped and every ',' kept, with
// the elements between them rendered as JSString renders them (null as nothing). A first pass
// sizes the result, so that it is allocated once (growing it by appending would allocate
// several times its size).
func jsJoin(raw []byte) string {
	var b strings.Builder
	b.Grow(jsWalk(raw, nil))
	jsWalk(raw, &b)
	return b.String()
}

// jsWalk writes the rendering of an array to b, or with b nil returns a bound on its length:
// exact but for strings with escapes, counted at their quoted length.
func jsWalk(raw []byte, b *strings.Builder) int {
	n := 0
	var scratch [32]byte
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '[', ']', ' ', '\t', '\n', '\r':
			i++
		case ',':
			n++
			if b != nil {
				b.WriteByte(',')
			}
			i++
		case '"':
			end := valueEnd(raw, i)
			str := raw[i:end]
			if b == nil {
				n += unquotedBound(str)
			} else {
				unquoteTo(b, str) // valid JSON assumed: a malformed string is left as far as it went
			}
			i = end
		case '{':
			n += len(objectString)
			if b != nil {
				b.WriteString(objectString)
			}
			i = valueEnd(raw, i)
		default:
			end := valueEnd(raw, i)
			if end == i { // a stray ':' or '}' in invalid input
				end++
			}
			if tok := raw[i:end]; string(tok) != "null" {
				out := appendJSScalar(scratch[:0], tok)
				n += len(out)
				if b != nil {
					b.Write(out)
				}
			}
			i = end
		}
	}
	return n
}

// unquotedBound bounds the length of a JSON string once decoded: its quoted length, plus two
// for each byte of invalid UTF-8 (which becomes U+FFFD, three bytes).
func unquotedBound(str []byte) int {
	n := len(str)
	for i := 0; i < len(str); {
		if str[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(str[i:])
		if r == utf8.RuneError && size == 1 {
			n += 2
		}
		i += size
	}
	return n
}

const objectString = "[object Object]"

// jsScalar renders a number, true, false or null; anything else comes back as it is.
func jsScalar(tok []byte) string {
	var scratch [32]byte
	return string(appendJSScalar(scratch[:0], tok))
}

func appendJSScalar(dst, tok []byte) []byte {
	if c := tok[0]; c != '-' && (c < '0' || c > '9') {
		return append(dst, tok...)
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !math.IsInf(f, 0) { // out of range is Infinity, as JSON.parse reads it
		return append(dst, tok...)
	}
	return appendJSNumber(dst, f)
}

// JSNumber formats f as JavaScript's Number.prototype.toString does: the shortest digits that
// read back as f, in fixed notation from 1e-7 up to 1e21 and in exponent notation ("1e+21",
// "1.5e-7") outside, "NaN" and "Infinity" as such, and -0 as "0". The result is at most 25
// bytes long.
func JSNumber(f float64) string {
	var scratch [32]byte
	return string(appendJSNumber(scratch[:0], f))
}

func appendJSNumber(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == 0:
		return append(b, '0')
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// d.ddddde±x: the digits, and n such that f = 0.digits × 10^n (ECMA-262's Number::toString).
	var scratch [32]byte
	e := strconv.AppendFloat(scratch[:0], f, 'e', -1, 64)
	at := bytes.IndexByte(e, 'e')
	x, _ := strconv.Atoi(string(e[at+1:]))
	var digitBuf [17]byte
	digits := append(append(digitBuf[:0], e[0]), e[min(2, at):at]...) // the first digit, then those after '.'
	n, k := x+1, len(digits)
	switch {
	case k <= n && n <= 21:
		b = append(b, digits...)
		for range n - k {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, digits[:n]...)
		b = append(b, '.')
		b = append(b, digits[n:]...)
	case -6 < n && n <= 0:
		b = append(b, '0', '.')
		for range -n {
			b = append(b, '0')
		}
		b = append(b, digits...)
	default:
		b = append(b, digits[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b
}
