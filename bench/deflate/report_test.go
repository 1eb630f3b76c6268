package main

import (
	"strings"
	"testing"

	"github.com/herald-go/herald/bench/internal/harness"
)

// TestBarPeers checks that the bar judges herald against its peers only: a herald variant
// (herald@...) that used less CPU is not "the cheapest peer".
func TestBarPeers(t *testing.T) {
	b := &bench{servers: []string{"herald", "herald@-context-size=1024", "gorilla"}, offers: offers[:1], memConns: 1000}
	o := offers[0].name
	res := results{echo: map[key][]echoResult{
		{"herald", o}:                    {{cpuPerMsg: 300}},
		{"herald@-context-size=1024", o}: {{cpuPerMsg: 200}},
		{"gorilla", o}:                   {{cpuPerMsg: 400}},
	}, mem: map[key][]memResult{}}
	var w strings.Builder
	b.bar(&w, res)
	if got, want := w.String(), "vs the cheapest peer, gorilla, 400.0 µs/msg (met)"; !strings.Contains(got, want) {
		t.Errorf("bar:\n%s\nwant it to say %q", got, want)
	}
	if !harness.Named("herald@-x=1", "herald") || harness.Named("heraldx", "herald") || harness.Named("gws", "herald") {
		t.Error("Named")
	}
}

// TestBarUnmeasured checks that the bar says what was not measured rather than print zeros.
func TestBarUnmeasured(t *testing.T) {
	b := &bench{servers: []string{"herald"}, offers: offers[1:], memConns: 0}
	var w strings.Builder
	b.bar(&w, results{echo: map[key][]echoResult{}, mem: map[key][]memResult{}})
	if got := w.String(); !strings.Contains(got, "memory not measured (ratio on the wire not measured)") || strings.Contains(got, "0.0") {
		t.Errorf("bar:\n%s", got)
	}
}
