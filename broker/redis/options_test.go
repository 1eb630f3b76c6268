package redis_test

import (
	"testing"

	"github.com/herald-go/herald/broker/redis"
)

func TestOptionsInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts redis.Options
	}{
		{"nothing", redis.Options{}},
		{"sentinel without addresses", redis.Options{SentinelMaster: "m"}},
		{"sentinel and cluster", redis.Options{SentinelMaster: "m", SentinelAddrs: []string{"a:1"}, Cluster: true}},
		{"cluster with a database", redis.Options{Addrs: []string{"a:1"}, Cluster: true, DB: 2}},
		{"cluster with braces", redis.Options{Addrs: []string{"a:1"}, Cluster: true, Prefix: "{app}:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if b, err := redis.New(c.opts); err == nil {
				b.Close()
				t.Errorf("New(%+v) accepted", c.opts)
			}
		})
	}
}
