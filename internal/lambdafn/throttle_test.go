package lambdafn

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookstep/hookstep/internal/sqs"
	"github.com/hookstep/hookstep/internal/webhook"
)

// scriptedLimiter holds every run back for wait, and counts its calls.
type scriptedLimiter struct {
	wait    time.Duration
	calls   int
	granted time.Time // the last reservation given
}

func (l *scriptedLimiter) Reserve(_ context.Context, _ webhook.Ref, _ int, now time.Time) (time.Time, error) {
	l.calls++
	l.granted = now.Add(l.wait)
	return l.granted, nil
}

// TestDeliverQueuedThrottled: in queue mode, a run whose first attempt
// the endpoint's throttle holds back is sent to the queue again, delayed
// until its reservation and carrying it, and its record is done (not a
// failure); nothing is sent or recorded. That message, received, makes
// the attempt with the reservation, without asking the limiter again.
func TestDeliverQueuedThrottled(t *testing.T) {
	var hits int
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits++ }))
	defer rcv.Close()
	r, started, _ := queueRig(t)
	in := seedSample(t, r, rcv.URL)
	ctx := context.Background()
	ep, err := r.store.GetEndpoint(ctx, in.AppID, in.EndpointID)
	if err != nil {
		t.Fatal(err)
	}
	prev, rate := ep.UpdatedAt, 2
	ep.ThrottleRate, ep.UpdatedAt = &rate, time.Now().UTC()
	if err := r.store.UpdateEndpoint(ctx, ep, prev); err != nil {
		t.Fatal(err)
	}
	lim := &scriptedLimiter{wait: 300 * time.Millisecond}
	r.svc.Throttle = lim
	var sent []*awssqs.SendMessageInput
	send := func(_ context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
		sent = append(sent, in)
		return &awssqs.SendMessageOutput{}, nil
	}
	throttled := sqs.NewThrottled(send, "https://sqs.invalid/000000000000/deliveries").Until
	l := &laterCalls{calls: map[string]int{}}
	record := func(body string) events.SQSEvent {
		return events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", ReceiptHandle: "h1", Body: body,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
	}
	body, _ := json.Marshal(in.Ref)

	resp, err := DeliverQueued(r.svc, l.later, throttled)(ctx, record(string(body)))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("throttled record: %+v, %v; want it done", resp, err)
	}
	if hits != 0 || lim.calls != 1 || len(*started) != 0 {
		t.Errorf("throttled record: %d POSTs, %d limiter calls, executions %v; want none, 1, none", hits, lim.calls, *started)
	}
	if d, _ := r.store.GetDelivery(ctx, in.AppID, in.MsgID, in.EndpointID); d.Attempts != 0 || d.Status != webhook.StatusPending {
		t.Errorf("delivery %v after %d attempts, want pending after 0", d.Status, d.Attempts)
	}
	// 300 ms, rounded up to the second of the reservation.
	if len(sent) != 1 || sent[0].DelaySeconds < 1 || sent[0].DelaySeconds > 2 {
		t.Fatalf("sent %d messages (%+v), want 1 delayed by 1 or 2 s", len(sent), sent)
	}
	ref, reservedAt, err := sqs.DecodeReserved(*sent[0].MessageBody)
	if err != nil || ref != in.Ref || !reservedAt.Equal(lim.granted.Truncate(time.Millisecond)) && !reservedAt.Equal(lim.granted) {
		t.Fatalf("the message sent back: %s (%v); want the run with its reservation %s, not rounded up", *sent[0].MessageBody, err, lim.granted)
	}

	// SQS delays it (the deliver function waits out the last moment).
	time.Sleep(time.Until(reservedAt) - 500*time.Millisecond)
	resp, err = DeliverQueued(r.svc, l.later, throttled)(ctx, record(*sent[0].MessageBody))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("reserved record: %+v, %v; want it done", resp, err)
	}
	if hits != 1 || lim.calls != 1 || len(sent) != 1 {
		t.Errorf("reserved record: %d POSTs, %d limiter calls, %d messages sent; want 1, still 1, still 1", hits, lim.calls, len(sent))
	}
	if time.Now().Before(reservedAt) {
		t.Errorf("the reserved attempt was made before its reservation %s", reservedAt)
	}
	if d, _ := r.store.GetDelivery(ctx, in.AppID, in.MsgID, in.EndpointID); d.Attempts != 1 || d.Status != webhook.StatusSuccess {
		t.Errorf("delivery %v after %d attempts, want success after 1", d.Status, d.Attempts)
	}
}
