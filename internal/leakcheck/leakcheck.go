// Package leakcheck helps tests that assert a number of idle connections keeps no goroutines.
package leakcheck

import (
	"runtime"
	"time"
)

// Settle waits, for up to 3 seconds, until fewer than slack goroutines run beyond before (a
// runtime.NumGoroutine taken earlier), giving goroutines that are on their way out the time
// to leave, and returns the last count it took. The caller asserts on that count.
func Settle(before, slack int) int {
	var during int
	for range 300 {
		during = runtime.NumGoroutine()
		if during-before < slack {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return during
}
