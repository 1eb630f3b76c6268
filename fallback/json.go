package fallback

import "unicode/utf8"

// jsonLen returns the length of s encoded as a JSON string by encoding/json, quotes included:
// what escaping adds (\u003c for <, >, & and control characters, \ufffd for invalid UTF-8,
// \u2028 and \u2029) counts. It never counts less than encoding/json writes.
func jsonLen(s []byte) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}
