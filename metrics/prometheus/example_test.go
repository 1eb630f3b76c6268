package prometheus_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-go/herald"
	heraldprom "github.com/herald-go/herald/metrics/prometheus"
)

// A nes server reporting to Prometheus, with its metrics served at /metrics.
func Example() {
	reg := prometheus.NewRegistry()
	rec, err := heraldprom.New(reg, nil)
	if err != nil {
		log.Fatal(err)
	}
	app := http.NewServeMux() // the application
	nes := herald.NewServer(app, &herald.Options{Metrics: rec})
	defer nes.Close()

	mux := http.NewServeMux()
	mux.Handle("/metrics", heraldprom.Handler(reg))
	mux.Handle("/ready", nes.ReadyHandler())
	mux.Handle("/", nes)
	_ = &http.Server{Addr: ":8080", Handler: mux} // ListenAndServe
}
