package dynamo

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/play/playtest"
	"github.com/hookstep/hookstep/internal/webhook"
)

func TestPlayStore(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	allOps.reset()
	playtest.Run(t, func(t *testing.T, clock webhook.Clock) play.Store {
		return newStore(t, clock).Play()
	})
	ops := allOps.counts()
	for _, op := range []string{"Scan", "TransactWriteItems", "TransactGetItems", "ExecuteStatement"} {
		if ops[op] > 0 {
			t.Errorf("the suite sent %d %s requests, want none", ops[op], op)
		}
	}
	t.Logf("operations sent by the suite: %v", ops)
}

// playPartitionItems reads a Play partition as stored, bypassing the
// Store, oldest first.
func (f *fixture) playPartitionItems(token string) []item {
	f.t.Helper()
	out, err := f.client.Query(f.ctx, &dynamodb.QueryInput{
		TableName:                 &f.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(playPartition(token))},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		f.t.Fatalf("Query %s: %v", playPartition(token), err)
	}
	return out.Items
}

// TestPlayItems checks the layout of a Play partition: the link and at
// most play.Keep requests, each with the TTL attribute, and what one Add
// sends.
func TestPlayItems(t *testing.T) {
	f := newFixture(t)
	p := f.Play()
	const token = "tok"
	if err := p.Link(f.ctx, token, play.Link{AppID: f.app.ID, EndpointID: f.ep.ID}); err != nil {
		t.Fatalf("Link: %v", err)
	}
	for i := range play.Keep + 3 {
		f.clock.Advance(time.Second)
		if err := p.Add(f.ctx, token, play.Request{ReceivedAt: f.clock.Now(), Method: "POST", Body: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	wantTTL := (f.clock.Now().Add(play.TTL).UnixMilli() + 999) / 1000

	items := f.playPartitionItems(token)
	if len(items) != play.Keep+1 {
		t.Fatalf("the partition holds %d items, want the link and %d requests", len(items), play.Keep)
	}
	link := items[0] // "LINK" sorts before "R#..."
	if got := stringAttr(link, AttrSK); got != "LINK" {
		t.Fatalf("first item's sort key = %q, want LINK", got)
	}
	if got := numAttr(link, TTLAttribute); got != wantTTL {
		t.Errorf("link %s = %d, want %d: renewed by the last Add", TTLAttribute, got, wantTTL)
	}
	requests := items[1:]
	if b, ok := requests[0]["body"].(*types.AttributeValueMemberB); !ok || string(b.Value) != "3" {
		t.Errorf("oldest kept request's body = %v, want 3 (the first three were trimmed)", requests[0]["body"])
	}
	if got := numAttr(requests[len(requests)-1], TTLAttribute); got != wantTTL {
		t.Errorf("newest request %s = %d, want %d (epoch seconds, rounded up)", TTLAttribute, got, wantTTL)
	}
	for _, it := range requests {
		if sk := stringAttr(it, AttrSK); !strings.HasPrefix(sk, playRequestPrefix) {
			t.Errorf("request sort key %q lacks %q", sk, playRequestPrefix)
		}
	}

	f.rec.reset()
	if err := p.Add(f.ctx, token, play.Request{ReceivedAt: f.clock.Now(), Method: "POST"}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	want := map[string]int{"PutItem": 1, "UpdateItem": 1, "Query": 1, "BatchWriteItem": 1}
	if got := f.rec.counts(); !maps.Equal(got, want) {
		t.Errorf("Add of a full token sent %v, want %v", got, want)
	}
}

// TestPlayLargestRequest checks that a request as large as Play keeps
// fits in one item: a body cut to play.KeepBytes and headers at API
// Gateway's limit of 10 KiB.
func TestPlayLargestRequest(t *testing.T) {
	f := newFixture(t)
	p := f.Play()
	req := play.Request{
		ReceivedAt: f.clock.Now(), Method: "POST",
		Body:      []byte(strings.Repeat("x", webhook.MaxPayloadBytes)),
		Headers:   []play.Header{{Name: "x-large", Value: strings.Repeat("h", 10<<10)}},
		Signature: play.SignatureCheck{Detail: strings.Repeat("d", 200)},
	}
	if err := p.Add(f.ctx, "tok", req); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got, err := p.Requests(f.ctx, "tok")
	if err != nil || len(got) != 1 || len(got[0].Body) != play.KeepBytes || !got[0].Truncated {
		t.Fatalf("Requests = %d requests, %v; want one with a cut body", len(got), err)
	}
}

// TestPlayTrimRecovers checks that requests left beyond play.Keep by
// failed trims are never shown and are removed by a later Add.
func TestPlayTrimRecovers(t *testing.T) {
	f := newFixture(t)
	p := f.Play()
	const token = "tok"
	add := func(n int) error {
		f.clock.Advance(time.Millisecond)
		return p.Add(f.ctx, token, play.Request{ReceivedAt: f.clock.Now(), Body: fmt.Appendf(nil, "%d", n)})
	}
	for i := range play.Keep {
		if err := add(i); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	f.rec.failWith(func(params any) error {
		if _, ok := params.(*dynamodb.BatchWriteItemInput); ok {
			return errCrash
		}
		return nil
	})
	for i := range 3 {
		if err := add(play.Keep + i); err == nil {
			t.Fatalf("Add with a failing trim: got no error")
		}
	}
	f.rec.failWith(nil)
	if n := len(f.playPartitionItems(token)); n != play.Keep+3 {
		t.Fatalf("after three failed trims the partition holds %d requests, want %d", n, play.Keep+3)
	}
	reqs, err := p.Requests(f.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != play.Keep || string(reqs[0].Body) != fmt.Sprint(play.Keep+2) {
		t.Errorf("Requests = %d, newest %s; want the newest %d", len(reqs), reqs[0].Body, play.Keep)
	}

	if err := add(1000); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if n := len(f.playPartitionItems(token)); n != play.Keep {
		t.Errorf("after a successful Add the partition holds %d requests, want %d", n, play.Keep)
	}
}
