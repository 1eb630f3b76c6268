package fanload_test

import (
	"fmt"

	"github.com/herald-go/herald/bench/internal/fanload"
)

// A publish request as the fan-out clients write it, and the fields they read back.
func Example() {
	m := fanload.NesMessage(nil, "request", 3, fanload.PublishBody("/item/5", 1))
	fmt.Println(string(m))
	seq, _ := fanload.Number(m, `"seq":`)
	fmt.Println(string(fanload.Field(m, `"type":"`)), seq)
	// Output:
	// {"type":"request","id":3,"method":"POST","path":"/publish","payload":{"path":"/item/5","message":{"seq":1,"status":"complete"}}}
	// request 1
}
