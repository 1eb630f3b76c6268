package track

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSet(t *testing.T) {
	var s Set[int]
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() { assert.True(t, s.Add(i)) })
	}
	wg.Wait()
	assert.Equal(t, 100, s.Len())
	s.Remove(7)
	s.Remove(7)
	assert.Equal(t, 99, s.Len())
	assert.Len(t, s.Items(), 99)
	assert.NotContains(t, s.Items(), 7)

	assert.False(t, s.Closed())
	s.Close()
	assert.True(t, s.Closed())
	assert.False(t, s.Add(1000), "a closed set takes nothing new")
	assert.Equal(t, 99, s.Len(), "what it held stays until removed")
}
