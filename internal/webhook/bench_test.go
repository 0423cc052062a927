package webhook

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkValidatePayload validates (and compacts) a 1 KiB payload, as
// the API does for every message: already compact, and pretty-printed.
func BenchmarkValidatePayload(b *testing.B) {
	compact := json.RawMessage(`{"type":"bench.message","seq":1,"data":"` + string(bytes.Repeat([]byte("x"), 1024-48)) + `"}`)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, compact, "", "  "); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload json.RawMessage
	}{{"compact1KiB", compact}, {"pretty1KiB", pretty.Bytes()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.payload)))
			b.ReportAllocs()
			loc := []string{"body", "payload"}
			for b.Loop() {
				var p Problems
				if ValidatePayload(&p, loc, tc.payload) == nil {
					b.Fatal(p.Err())
				}
			}
		})
	}
}
