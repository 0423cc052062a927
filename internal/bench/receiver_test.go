package bench

import (
	"net/http"
	"testing"
)

func TestRecoveringReceiverFailsTheFirstTwoRequestsPerMessage(t *testing.T) {
	r, err := startReceiver(Recovering, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	post := func(msgID string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, r.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-id", msgID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Two messages interleaved: each has its own count.
	for i, tc := range []struct {
		msgID string
		want  int
	}{
		{"msg_a", 500}, {"msg_a", 500}, {"msg_b", 500}, {"msg_a", 200}, {"msg_a", 200},
		{"msg_b", 500}, {"msg_b", 200},
	} {
		if got := post(tc.msgID); got != tc.want {
			t.Errorf("request %d (%s): status %d, want %d", i+1, tc.msgID, got, tc.want)
		}
	}
	if got := r.attempts.Load(); got != 7 {
		t.Errorf("attempts %d, want 7", got)
	}
}
