package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

func TestExpBadInput(t *testing.T) {
	fn := startFuzzNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, fn.addr)
	if err != nil { t.Fatal(err) }
	defer c.Close()
	try := func(name string, f func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		t.Logf("%-28s %v (%s)", name, f(ctx), time.Since(start).Round(time.Millisecond))
	}
	try("put empty key", func(ctx context.Context) error { _, err := c.Put(ctx, "", []byte("v")); return err })
	try("get empty key", func(ctx context.Context) error { _, err := c.Get(ctx, ""); return err })
	try("put key 4097", func(ctx context.Context) error { _, err := c.Put(ctx, strings.Repeat("k", 4097), []byte("v")); return err })
	try("put value 1025", func(ctx context.Context) error { _, err := c.Put(ctx, "k", make([]byte, 1025)); return err })
	try("put value 70000 (>frame)", func(ctx context.Context) error { _, err := c.Put(ctx, "k", make([]byte, 70000)); return err })
	try("put invalid utf8 key", func(ctx context.Context) error { _, err := c.Put(ctx, "k\xff", []byte("v")); return err })
	try("list prefix 5000", func(ctx context.Context) error { _, err := c.List(ctx, strings.Repeat("p", 5000), 0); return err })
	try("session ttl 0", func(ctx context.Context) error { _, err := c.NewSession(ctx, 0); return err })
	try("session ttl 2h", func(ctx context.Context) error { _, err := c.NewSession(ctx, 2*time.Hour); return err })
	s, err := c.NewSession(ctx, 10*time.Second)
	if err != nil { t.Fatal(err) }
	try("lock empty name", func(ctx context.Context) error { _, err := s.Lock(ctx, ""); return err })
	try("lock name 4097", func(ctx context.Context) error { _, err := s.Lock(ctx, strings.Repeat("n", 4097)); return err })
	try("campaign empty name", func(ctx context.Context) error { _, err := s.Campaign(ctx, "", []byte("v")); return err })
	try("campaign name 4097", func(ctx context.Context) error { _, err := s.Campaign(ctx, strings.Repeat("n", 4097), []byte("v")); return err })
	try("campaign value 2000", func(ctx context.Context) error { _, err := s.Campaign(ctx, "e", make([]byte, 2000)); return err })
	try("lock invalid utf8", func(ctx context.Context) error { _, err := s.Lock(ctx, "l\xff"); return err })
}
