package hub_test

import (
	"fmt"

	"github.com/herald-go/herald/bench/internal/hub"
)

func Example() {
	h := hub.New[string]()
	cl := h.Join(4)
	h.Broadcast("hello")
	h.Broadcast("world")
	h.Leave(cl) // the queue is closed; Write writes what it holds, then returns
	h.Write(cl, func(m string) error {
		fmt.Println(m)
		return nil
	})
	// Output:
	// hello
	// world
}
