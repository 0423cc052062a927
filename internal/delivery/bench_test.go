package delivery_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
)

// collect is a Dispatcher that keeps the runs it is handed.
type collect struct {
	mu   sync.Mutex
	refs []webhook.Ref
}

func (c *collect) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	c.mu.Lock()
	c.refs = append(c.refs, refs...)
	c.mu.Unlock()
	return refs, nil
}

// BenchmarkAttempt is one happy delivery attempt as local mode makes it:
// read the delivery, endpoint and message from SQLite, sign, POST to a
// receiver on loopback with the real sender, record the attempt. Parallel
// attempts share the store's group commits and the sender's connections.
func BenchmarkAttempt(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			defer rcv.Close()
			store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			disp := &collect{}
			svc := &delivery.Service{
				Store: store, Dispatcher: disp, Schedule: webhook.DefaultSchedule, Clock: webhook.SystemClock{},
				Sender: sender.New(sender.Config{Timeout: 5 * time.Second, AllowPrivate: true}),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			now := time.Now()
			app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "bench", CreatedAt: now, UpdatedAt: now}
			key, _ := signing.GenerateSecret()
			ep := &webhook.Endpoint{
				ID: webhook.NewID(webhook.PrefixEndpoint), AppID: app.ID, URL: rcv.URL + "/hook",
				Keys: []webhook.SigningKey{{Key: key}}, Version: 1, CreatedAt: now, UpdatedAt: now,
			}
			if err := store.CreateApp(b.Context(), app); err != nil {
				b.Fatal(err)
			}
			if err := store.CreateEndpoint(b.Context(), ep); err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"type":"bench.message","data":"` + string(bytes.Repeat([]byte("x"), 1024-37)) + `"}`)
			for range b.N {
				msg := &webhook.Message{
					ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: "bench.message",
					Payload: payload, Timestamp: now, ExpiresAt: now.Add(24 * time.Hour),
				}
				if err := svc.Publish(b.Context(), msg); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			attempt := func() {
				ref := disp.refs[next.Add(1)-1]
				res, err := svc.Attempt(context.Background(), ref)
				if err != nil || res.Outcome != delivery.Delivered {
					b.Fatalf("Attempt: %+v, %v", res, err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						attempt()
					}
				})
				return
			}
			for range b.N {
				attempt()
			}
		})
	}
}
