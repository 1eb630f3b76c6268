package websocket

import (
	"testing"
	"unsafe"
)

// An idle connection in idle mode is mostly its Conn: keep it in the 576-byte size class
// (568 bytes, plus the 8-byte header the runtime puts before objects over 512 bytes that hold
// pointers). A field more, or padding, moves it to the 640-byte class; bench/idle sees it.
func TestConnSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 568 {
		t.Errorf("Conn is %d bytes, past the 576-byte size class with its malloc header: "+
			"put new fields outside it (as pinging is), or find the bytes elsewhere", size)
	}
}
