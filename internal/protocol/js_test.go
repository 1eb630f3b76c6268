package protocol

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The expectations are node 20's String(JSON.parse(raw)).
func TestJSString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{`"2"`, "2"}, {`" x "`, " x "}, {`"\u00e9\n"`, "é\n"}, {`null`, "null"}, {`true`, "true"}, {`false`, "false"},
		{`{"a":1}`, "[object Object]"}, {`{}`, "[object Object]"}, {``, "undefined"},
		{`[1,"a",null]`, "1,a,"}, {`[["a",null],[]]`, "a,,"}, {`[[],[]]`, ","}, {`[null]`, ""}, {`[]`, ""},
		{`[[[[""]]]]`, ""}, {` [ {"x":[1,2]} , [1e21,true,false] ] `, "[object Object],1e+21,true,false"},
		{`[" x ", "\u00e9", "a,b"]`, " x ,é,a,b"}, {`["[\"]"]`, `["]`},
		// numbers
		{`0`, "0"}, {`-0`, "0"}, {`-1`, "-1"}, {`1.50`, "1.5"}, {`1e21`, "1e+21"}, {`1e20`, "100000000000000000000"},
		{`123456789012345678901234`, "1.2345678901234569e+23"}, {`1e-7`, "1e-7"}, {`1e-6`, "0.000001"},
		{`0.000001234`, "0.000001234"}, {`1.5e-7`, "1.5e-7"}, {`5e-324`, "5e-324"},
		{`1.7976931348623157e308`, "1.7976931348623157e+308"}, {`1e400`, "Infinity"}, {`-1e400`, "-Infinity"},
		{`1e-400`, "0"}, {`0.1`, "0.1"}, {`12345.6789e3`, "12345678.9"}, {`-2.5e-10`, "-2.5e-10"}, {`123e-20`, "1.23e-18"},
		{`0.30000000000000004`, "0.30000000000000004"}, {`9007199254740993`, "9007199254740992"},
	} {
		assert.Equal(t, tc.want, JSString([]byte(tc.raw)), tc.raw)
	}
}

// TestJSStringInvalidInput: JSString is for valid JSON, but nothing it is given may panic.
func TestJSStringInvalidInput(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`[`, `["`, `["\`, `[{`, `[}`, `[:]`, `[-]`, `-`, `[1,`, `{`, `"`, `"\u12`, `[,,]`, `[[["a"`} {
		assert.NotPanics(t, func() { JSString([]byte(raw)) }, raw)
	}
}

// TestJSStringLinear is the regression test for a request whose header value (or method, path,
// hello version) was an array nested thousands deep around a long string: JSString decoded
// and copied the rest of the value at every level, so a message of 1 MiB at depth 3000 took
// about 30 s. Nesting now costs nothing: the same message at depth 9000 must be rendered as
// fast, within a bound generous for a slow machine under the race detector (the quadratic
// version needed minutes). The work is shown linear without a clock too: the result of a
// value nested d deep is the same as that of the flat value.
func TestJSStringLinear(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 1<<20)
	for _, depth := range []int{1, 9000} {
		raw := strings.Repeat("[", depth) + `"` + long + `",null` + strings.Repeat("]", depth)
		done := make(chan string, 1)
		go func() { done <- JSString([]byte(raw)) }()
		select {
		case s := <-done:
			assert.Equal(t, long+",", s, "depth %d", depth)
		case <-time.After(20 * time.Second):
			t.Fatalf("JSString of a 1 MiB string nested %d deep did not return within 20 s", depth)
		}
	}
}

// TestJSStringBoundedOutput: the result is never more than a few times the size of its input.
func TestJSStringBoundedOutput(t *testing.T) {
	t.Parallel()
	for _, item := range []string{`{}`, `1e20`, `1e-6`, `null`, `[]`, `true`, `"\u00e9"`, `5e-324`, `-1e20`} {
		raw := "[" + strings.Repeat(item+",", 10000) + item + "]"
		got := JSString([]byte(raw))
		assert.LessOrEqual(t, len(got), 8*len(raw), "an array of %s", item)
	}
}

// TestJSStringAllocatesOnce: rendering an array allocates its result once, not the several
// times its size that growing it by appending costs. (Not parallel: it reads the process's
// allocation counter.)
func TestJSStringAllocatesOnce(t *testing.T) {
	for _, item := range []string{`{}`, `1e20`, `"abc"`, `"\u00e9"`, `[null,[]]`} {
		raw := []byte("[" + strings.Repeat(item+",", 100000) + item + "]")
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := JSString(raw)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes in, %d out, %d allocated", item, len(raw), len(s), alloc)
		assert.LessOrEqual(t, alloc, uint64(2*(len(raw)+len(s))+4096), "an array of %s", item)
	}
}

// jsStringRef is JSString written the obvious way, on a decoded value, as the oracle.
func jsStringRef(v any, inArray bool) string {
	switch v := v.(type) {
	case nil:
		if inArray {
			return ""
		}
		return "null"
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return JSNumber(v)
	case map[string]any:
		return "[object Object]"
	case []any:
		parts := make([]string, len(v))
		for i, it := range v {
			parts[i] = jsStringRef(it, true)
		}
		return strings.Join(parts, ",")
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

// FuzzJSString checks JSString against jsStringRef on valid JSON, and that it never panics
// and stays within a few times the size of its input on anything.
func FuzzJSString(f *testing.F) {
	for _, s := range []string{`[["a",null],[]]`, `"\ud83d\ude00\ud800x"`, `[{"a":[1]},1e21,-0,"\u00e9",true]`, `[[[[""]]]]`, "\"\xff\xfe\"", `[1e400]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := JSString(raw)
		if len(got) > 8*len(raw)+25 {
			t.Fatalf("%q: %d bytes from %d", raw, len(got), len(raw))
		}
		var v any
		if !json.Valid(raw) || json.Unmarshal(raw, &v) != nil {
			return // numbers out of range fail Unmarshal
		}
		if want := jsStringRef(v, false); got != want {
			t.Fatalf("%q: JSString %q, want %q", raw, got, want)
		}
	})
}

// FuzzString checks String against encoding/json's decoding of a string.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud83d\ude00"`, `"\ud800\u0041"`, `"\udc00\ud800"`, "\"\xff\"", `"\/\b\f\n\r\t\"\\"`, `"\u00E9"`, `"`, `""`, `"\x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := String(raw)
		var want string
		if !json.Valid(raw) || json.Unmarshal(raw, &want) != nil {
			return // String is for what Decode took
		}
		if !ok || got != want {
			t.Fatalf("%q: String = %q, %v; encoding/json says %q", raw, got, ok, want)
		}
	})
}
