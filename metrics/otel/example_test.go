package otel_test

import (
	"log"
	"net/http"

	"go.opentelemetry.io/otel"

	"github.com/herald-go/herald"
	heraldotel "github.com/herald-go/herald/metrics/otel"
)

// A nes server reporting to OpenTelemetry, through the global MeterProvider (set it up with
// your exporter first).
func Example() {
	rec, err := heraldotel.New(otel.Meter("github.com/herald-go/herald"))
	if err != nil {
		log.Fatal(err)
	}
	nes := herald.NewServer(http.NotFoundHandler(), &herald.Options{Metrics: rec})
	defer nes.Close()
}
