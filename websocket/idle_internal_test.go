package websocket

import (
	"testing"
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
