package signing

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// benchBody is a 1 KiB payload, the size make bench sends.
var benchBody = append(append([]byte(`{"type":"bench.message","data":"`), bytes.Repeat([]byte("x"), 1024-44)...), `"}`...)

func benchKeys(b *testing.B, n int) [][]byte {
	b.Helper()
	keys := make([][]byte, n)
	for i := range keys {
		k, err := GenerateSecret()
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

// BenchmarkSign signs one attempt: one key, and three during a rotation.
func BenchmarkSign(b *testing.B) {
	ts := time.Unix(1_750_000_000, 0)
	for _, n := range []int{1, 3} {
		keys := benchKeys(b, n)
		b.Run(map[int]string{1: "1key", 3: "3keys"}[n], func(b *testing.B) {
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			for b.Loop() {
				Sign(keys, "msg_2pBenchKSUID0000000000001", ts, benchBody)
			}
		})
	}
}

// BenchmarkSetHeaders signs and sets the six signature headers, as the
// sender does for each attempt.
func BenchmarkSetHeaders(b *testing.B) {
	keys := benchKeys(b, 1)
	ts := time.Unix(1_750_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 8)
		SetHeaders(h, "msg_2pBenchKSUID0000000000001", ts, Sign(keys, "msg_2pBenchKSUID0000000000001", ts, benchBody))
	}
}

// BenchmarkVerify is what a receiver does with each request.
func BenchmarkVerify(b *testing.B) {
	keys := benchKeys(b, 1)
	ts := time.Unix(1_750_000_000, 0)
	h := http.Header{}
	SetHeaders(h, "msg_2pBenchKSUID0000000000001", ts, Sign(keys, "msg_2pBenchKSUID0000000000001", ts, benchBody))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(keys, h, benchBody, ts, 0); err != nil {
			b.Fatal(err)
		}
	}
}
