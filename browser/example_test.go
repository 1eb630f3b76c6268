package browser_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/herald-go/herald/browser"
)

// Handler mounted under /herald/ beside an application: pages import
// /herald/herald-socket.js.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler()))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/herald/herald-socket.js", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))

	// A browser that has it revalidates with the ETag and gets 304.
	req := httptest.NewRequest("GET", "/herald/herald-socket.js", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 200 text/javascript; charset=utf-8 no-cache
	// 304
}
