// Package browser serves herald's browser modules: plain ES modules, without a build step,
// for pages that talk to a herald nes server.
//
//   - herald-socket.js exports HeraldSocket: a WebSocket for the official @hapi/nes client
//     that tries a real WebSocket first, then herald's fallback (an EventSource down and JSON
//     POSTs up, then long-polling; see fallback/PROTOCOL.md), behind the WebSocket interface:
//     `nes.Client.WebSocket = HeraldSocket` makes the official client work over every
//     transport.
//   - client.js exports herald's own nes Client, and HeraldSocket again.
//
// Each module has its TypeScript declarations beside it (.d.ts), and package.json names them
// as the npm package @herald-go/browser ("." is client.js, "./herald-socket" is
// herald-socket.js).
//
// # Serving them
//
// [Handler] serves the files from memory, embedded in the program, with an ETag and
// Cache-Control: no-cache, so that pages always load the version the server speaks:
//
//	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler()))
//
// and in the page:
//
//	<script src="/nes.js"></script> <!-- @hapi/nes's lib/client.js: window.nes -->
//	<script type="module">
//	  import { HeraldSocket } from '/herald/herald-socket.js';
//	  nes.Client.WebSocket = HeraldSocket;
//	  const client = new nes.Client('ws://' + location.host);
//	  await client.connect();
//	</script>
//
// # How HeraldSocket chooses
//
// A new socket tries its transports in order (default: websocket, sse, poll). It opens for the
// page when the WebSocket's handshake succeeds, but keeps what the page sends until the
// server's first message arrives: a proxy may pass the upgrade and then drop the frames, and the
// nes client says hello only after open. With no answer within fallbackTimeout (default 5 s) it
// moves to the event stream and sends what it kept there, invisibly to the page; likewise a
// stream whose open event does not come in time (a proxy that buffers it) makes way for
// long-polling. Each new socket starts again from the WebSocket, so a client that reconnects
// returns to it once it works. On the fallback, a dropped stream is resumed by the browser's
// own EventSource reconnection (Last-Event-ID) within the session's grace period, messages
// are delivered in order and each once, and POSTs that fail on the network are retried (the
// server applies each batch once); the page sees close only when the session ends: code 1006
// when it was lost, the server's close code otherwise.
//
// Over HTTP/1.1 a browser opens at most six connections to one host, and each socket on the
// fallback holds one for its stream or poll: serve over HTTP/2 (TLS) for pages with many
// sockets.
package browser
