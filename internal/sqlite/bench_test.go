package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// benchPayload is a 1 KiB payload, the size make bench sends.
var benchPayload = json.RawMessage(`{"type":"bench.message","data":"` + string(bytes.Repeat([]byte("x"), 1024-37)) + `"}`)

// benchStore is a store on a file (as local mode runs it: WAL,
// synchronous=FULL) with one app and fanOut endpoints.
type benchStore struct {
	*Store
	app *webhook.App
	eps []*webhook.Endpoint
}

func newBenchStore(b *testing.B, fanOut int) *benchStore {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "hookstep.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Now()
	bs := &benchStore{Store: s, app: &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "bench", CreatedAt: now, UpdatedAt: now}}
	if err := s.CreateApp(b.Context(), bs.app); err != nil {
		b.Fatal(err)
	}
	for i := range fanOut {
		ep := &webhook.Endpoint{
			ID: webhook.NewID(webhook.PrefixEndpoint), AppID: bs.app.ID, URL: fmt.Sprintf("https://example.com/hook/%d", i),
			Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdef0123456789abcdef")}}, Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		if err := s.CreateEndpoint(b.Context(), ep); err != nil {
			b.Fatal(err)
		}
		bs.eps = append(bs.eps, ep)
	}
	return bs
}

// message stores a message with one delivery per endpoint, as Publish does.
func (bs *benchStore) message(b *testing.B) *webhook.Message {
	now := time.Now()
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: bs.app.ID, EventType: "bench.message",
		Payload: benchPayload, Timestamp: now, ExpiresAt: now.Add(90 * 24 * time.Hour),
	}
	ds := make([]webhook.Delivery, len(bs.eps))
	for i, ep := range bs.eps {
		ds[i] = webhook.Delivery{EndpointID: ep.ID, NextAttemptAt: now}
	}
	if err := bs.CreateMessage(b.Context(), msg, ds); err != nil {
		b.Fatal(err)
	}
	return msg
}

// success is the result of a successful first attempt of msg to ep.
func success(msg *webhook.Message, ep *webhook.Endpoint) webhook.AttemptResult {
	now := time.Now()
	return webhook.AttemptResult{
		Attempt: webhook.Attempt{
			ID: webhook.NewID(webhook.PrefixAttempt), AppID: msg.AppID, MsgID: msg.ID, EndpointID: ep.ID,
			EventType: msg.EventType, URL: ep.URL, Response: `{"ok":true}`, ResponseStatusCode: 200,
			ResponseDurationMs: 1, Status: webhook.StatusSuccess, Timestamp: now, ExpiresAt: msg.ExpiresAt,
		},
		Attempts: 1, Status: webhook.StatusSuccess,
	}
}

// BenchmarkRecordAttempt records the success of a first attempt: the
// write of every delivery. Parallel callers share group commits.
func BenchmarkRecordAttempt(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			bs := newBenchStore(b, 1)
			msgs := make([]*webhook.Message, b.N) // RunParallel shares b.N out
			for i := range msgs {
				msgs[i] = bs.message(b)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			record := func() {
				msg := msgs[next.Add(1)-1]
				if _, err := bs.RecordAttempt(b.Context(), success(msg, bs.eps[0])); err != nil {
					b.Fatal(err)
				}
			}
			if parallel {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						record()
					}
				})
				return
			}
			for range b.N {
				record()
			}
		})
	}
}

// cpuTime is the CPU time (user and system) the process used so far, or
// 0 where it cannot be read (set in cputime_unix_test.go).
var cpuTime = func() time.Duration { return 0 }

// reportCPU reports the CPU time the benchmark used per op since start
// (cpu-ns/op): a group commit's work shows there even when the fsync of
// each commit sets the pace of ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 {
		return
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkGroupCommit runs concurrent writes the size of an attempt
// record (a row with a 1 KiB value inserted in an indexed table, and a
// row of a small table updated) through the writer, so that they commit
// in groups: the cost of group commit itself, without a store method's
// setup. cpu-ns/op is what the writes cost the machine beyond the wait
// for fsync.
func BenchmarkGroupCommit(b *testing.B) {
	bs := newBenchStore(b, 0)
	for _, stmt := range []string{
		"CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL)",
		"CREATE INDEX bench_rows_k ON bench_rows (k)",
		"CREATE TABLE bench_counts (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
		"INSERT INTO bench_counts (id, n) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0)",
	} {
		if _, err := bs.exec(b.Context(), stmt); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			err := bs.inTx(b.Context(), func(tx querier) error {
				if _, err := tx.ExecContext(b.Context(), "INSERT INTO bench_rows (k, v) VALUES (?, ?)",
					webhook.NewID(webhook.PrefixAttempt), []byte(benchPayload)); err != nil {
					return err
				}
				_, err := tx.ExecContext(b.Context(), "UPDATE bench_counts SET n = n + 1 WHERE id = ?", i%8)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportCPU(b, start)
}

// BenchmarkCreateMessage stores a message and its deliveries (fan-out 1
// and 10), then marks them dispatched, as the API's create-message path
// does.
func BenchmarkCreateMessage(b *testing.B) {
	for _, fanOut := range []int{1, 10} {
		b.Run(fmt.Sprintf("fanout%d", fanOut), func(b *testing.B) {
			bs := newBenchStore(b, fanOut)
			b.ReportAllocs()
			for b.Loop() {
				msg := bs.message(b)
				refs := make([]webhook.Ref, len(bs.eps))
				for i, ep := range bs.eps {
					refs[i] = webhook.Ref{AppID: msg.AppID, MsgID: msg.ID, EndpointID: ep.ID}
				}
				if err := bs.MarkDispatchedBatch(b.Context(), refs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClaimDue claims from a queue of due deliveries one at a time,
// as local mode mostly does (a worker frees up, claims what is due), and
// in batches of 32.
func BenchmarkClaimDue(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprint(batch), func(b *testing.B) {
			bs := newBenchStore(b, 10)
			for range 500 {
				bs.message(b) // 5,000 due deliveries
			}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				// A lease of 1 ns: the claimed ones are due again at the
				// next millisecond, so the queue never runs dry.
				now = now.Add(time.Millisecond)
				refs, err := bs.ClaimDue(b.Context(), now, time.Nanosecond, batch)
				if err != nil || len(refs) != batch {
					b.Fatalf("ClaimDue: %d refs, %v", len(refs), err)
				}
			}
		})
	}
}

// BenchmarkAttemptReads is what an attempt reads before it sends: the
// delivery, the endpoint and the message.
func BenchmarkAttemptReads(b *testing.B) {
	bs := newBenchStore(b, 1)
	msg := bs.message(b)
	ep := bs.eps[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bs.GetDelivery(b.Context(), msg.AppID, msg.ID, ep.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := bs.GetEndpoint(b.Context(), msg.AppID, ep.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := bs.GetMessage(b.Context(), msg.AppID, msg.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadRun reads the same as BenchmarkAttemptReads in one query.
func BenchmarkLoadRun(b *testing.B) {
	bs := newBenchStore(b, 1)
	msg := bs.message(b)
	ref := webhook.Ref{AppID: msg.AppID, MsgID: msg.ID, EndpointID: bs.eps[0].ID}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := bs.LoadRun(b.Context(), ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordAttemptFanOut10 records, from 16 goroutines, the
// successful first attempts of messages to 10 endpoints, in the order the
// local queue makes them (a message's deliveries together): what the
// writer does per delivery at fan-out 10. cpu-ns/op is the machine's
// cost per attempt recorded.
func BenchmarkRecordAttemptFanOut10(b *testing.B) {
	bs := newBenchStore(b, 10)
	msgs := make([]*webhook.Message, (b.N+9)/10)
	for i := range msgs {
		msgs[i] = bs.message(b)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			res := success(msgs[i/10], bs.eps[i%10])
			from := webhook.NewDelivery(msgs[i/10], bs.eps[i%10].ID) // as the engine passes it
			res.From = &from
			if _, err := bs.RecordAttempt(b.Context(), res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	reportCPU(b, start)
}

// BenchmarkCreateMessageParallel stores messages to 1 and to 10
// endpoints from 16 goroutines, so that they commit in groups, as the
// API's do under load. cpu-ns/op is the machine's cost per message.
func BenchmarkCreateMessageParallel(b *testing.B) {
	for _, fanOut := range []int{1, 10} {
		b.Run(fmt.Sprintf("fanout%d", fanOut), func(b *testing.B) {
			bs := newBenchStore(b, fanOut)
			b.ReportAllocs()
			b.SetParallelism(16)
			start := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bs.message(b)
				}
			})
			b.StopTimer()
			reportCPU(b, start)
		})
	}
}
