package deflate_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// A server negotiates permessage-deflate when it lists the extension in Options.Extensions
// and the client offers it (browsers do; websocket.Dial does by default). Messages are
// compressed and inflated transparently: Read and Write see the plain bytes.
func ExampleNew() {
	opts := &websocket.Options{
		Extensions: []websocket.Extension{deflate.New(deflate.Options{
			// Each client compresses its messages on their own, so the server keeps no
			// history of them per connection.
			ClientNoContextTakeover: true,
		})},
		MaxLength: 1 << 20, // bounds the inflated size: a decompression bomb closes with 1009
	}
	hs := httptest.NewServer(&websocket.Handler{Options: opts, Accept: func(c *websocket.Conn) {
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}})
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &websocket.DialOptions{
		Proxy: websocket.NoProxy, // the example's server is on loopback
		Extensions: []websocket.Extension{deflate.New(deflate.Options{
			ClientNoContextTakeover: true,
		})},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	fmt.Println(c.Extensions())
	msg := strings.Repeat("herald compresses repetitive text well. ", 100)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	_, echo, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(echo), string(echo) == msg)
	// Output:
	// permessage-deflate; client_no_context_takeover
	// 4000 true
}
