package websocket

import (
	"testing"
	"time"
	"unsafe"
)

// An idle connection in idle mode is mostly its Conn: keep it in the 512-byte size class, the
// largest whose objects need no malloc header (the runtime puts 8 bytes before objects over 512
// bytes that hold pointers). A field more, or padding, moves it to the 576-byte class (64 bytes
// more per connection); bench/idle sees it.
func TestConnSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 512 {
		t.Errorf("Conn is %d bytes, past the 512-byte size class (and into those with a malloc header): "+
			"put new fields outside it (as pinging is), or find the bytes elsewhere", size)
	}
}

// Connections made with equal options share one connOptions (that is what keeps the Conn in
// its size class), and no more than maxInterned distinct ones are ever kept.
func TestInternOptionsSharedAndBounded(t *testing.T) {
	base := connOptions{MaxLength: 1 << 20, PingInterval: 7}
	a, b := internOptions(base), internOptions(base)
	if a != b || *a != base {
		t.Fatalf("equal options not shared: %p %p (%+v)", a, b, *a)
	}
	for i := range 3 * maxInterned {
		o := base
		o.CloseTimeout = time.Duration(i + 1)
		if p := internOptions(o); *p != o {
			t.Fatalf("internOptions(%+v) = %+v", o, *p)
		}
	}
	internMu.Lock()
	n := len(interned)
	internMu.Unlock()
	if n > maxInterned {
		t.Errorf("%d options kept, more than maxInterned (%d)", n, maxInterned)
	}
	if internOptions(base) != a {
		t.Error("an interned value is no longer shared once the table is full")
	}
}
