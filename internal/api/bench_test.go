package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/hookstep/hookstep/internal/delivery"
)

// benchMessage is a create-message body with a 1 KiB payload, as make
// bench sends.
func benchMessage(seq int) []byte {
	pad := bytes.Repeat([]byte("x"), 1024-48)
	return []byte(`{"eventType":"bench.message","payload":{"type":"bench.message","seq":` + strconv.Itoa(seq) + `,"data":"` + string(pad) + `"}}`)
}

// BenchmarkCreateMessage is POST /api/v1/app/{app}/msg end to end in
// process: authentication, decoding and validation, the app lookup, the
// real fan-out (delivery.Service.Publish) into the SQLite store, and the
// 202 response; the dispatch is a no-op. Parallel requests share the
// store's group commits, as concurrent clients do.
func BenchmarkCreateMessage(b *testing.B) {
	for _, fanOut := range []int{1, 10} {
		for _, parallel := range []bool{false, true} {
			name := fmt.Sprintf("fanout%d/%s", fanOut, map[bool]string{false: "serial", true: "parallel"}[parallel])
			b.Run(name, func(b *testing.B) {
				h := newHarness(b, func(c *Config) {
					c.Deliveries = &delivery.Service{
						Store: c.Store, Dispatcher: noDispatch{}, Clock: c.Clock,
						Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
					}
				})
				app := str(h.createApp(map[string]any{"name": "bench"})["id"])
				for i := range fanOut {
					h.createEndpoint(app, map[string]any{"url": fmt.Sprintf("https://example.com/hook/%d", i)})
				}
				path := "http://hookstep.test/api/v1/app/" + app + "/msg?with_content=false"
				post := func(seq int) {
					req := httptest.NewRequestWithContext(context.Background(), "POST", path, bytes.NewReader(benchMessage(seq)))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.srv.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted {
						b.Fatalf("POST msg: %d %s", rec.Code, rec.Body)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for i := 0; pb.Next(); i++ {
							post(i)
						}
					})
					return
				}
				for i := range b.N {
					post(i)
				}
			})
		}
	}
}
