package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// perShard is how many messages shardedFixture puts in each shard.
const perShard = 2

// shardedFixture is a fixture whose endpoint has a delivery and an
// attempt of perShard messages in every shard. Messages alternate
// between two event types, attempts between success and failure, so
// that filters select every other item.
type shardedFixture struct {
	*fixture
	msgs []*webhook.Message // in id order
	atts []webhook.Attempt  // in id order, atts[i] of msgs[i]
}

func newShardedFixture(t *testing.T) *shardedFixture {
	t.Helper()
	if EndpointShards != MessageShards {
		t.Fatalf("the fixture picks message ids for %d message shards, which are not the %d endpoint shards", MessageShards, EndpointShards)
	}
	f := &shardedFixture{fixture: newFixture(t)}
	count := make(map[string]int)
	for tries := 0; len(f.msgs) < perShard*MessageShards; tries++ {
		if tries == 1000 {
			t.Fatalf("1000 message ids filled only the shards %v, want %d of each of %d shards", count, perShard, MessageShards)
		}
		msg := f.newMessage(time.Hour)
		pk := shard(appMessages(f.app.ID), msg.ID, MessageShards)
		if count[pk] == perShard {
			continue // pick ids until every shard has perShard
		}
		count[pk]++
		i := len(f.msgs)
		if i%2 == 1 {
			msg.EventType = "user.deleted"
		}
		if err := f.CreateMessage(f.ctx, msg, []webhook.Delivery{{EndpointID: f.ep.ID}}); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		status := webhook.StatusSuccess
		res := webhook.AttemptResult{Attempts: 1, Status: webhook.StatusSuccess}
		if i%2 == 1 {
			status = webhook.StatusFail
			res.Status, res.NextAttemptAt = webhook.StatusSending, f.clock.Now().Add(time.Hour)
		}
		res.Attempt = f.attempt(msg, f.ep.ID, status)
		if _, err := f.RecordAttempt(f.ctx, res); err != nil {
			t.Fatalf("RecordAttempt: %v", err)
		}
		f.msgs = append(f.msgs, msg)
		f.atts = append(f.atts, res.Attempt)
		f.clock.Advance(time.Second)
	}
	return f
}

// TestShardsSpreadWrites reads the stored items of one endpoint and one
// app: their index partition keys are spread over every shard, a
// message's delivery and attempt share one, and a new run keeps it.
func TestShardsSpreadWrites(t *testing.T) {
	f := newShardedFixture(t)
	msgBase, epBase := appMessages(f.app.ID), endpointPartition(f.app.ID, f.ep.ID)
	listPKs, epPKs := map[string]bool{}, map[string]bool{}
	for i, msg := range f.msgs {
		m, ok := f.rawItem(messageKey(f.app.ID, msg.ID))
		d, ok2 := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID))
		a, ok3 := f.rawItem(attemptKey(f.app.ID, msg.ID, f.atts[i].ID))
		if !ok || !ok2 || !ok3 {
			t.Fatalf("message %s: items found: message %v, delivery %v, attempt %v; want all", msg.ID, ok, ok2, ok3)
		}
		listPKs[stringAttr(m, AttrListPK)] = true
		dpk, apk := stringAttr(d, AttrEndpointPK), stringAttr(a, AttrEndpointPK)
		if dpk != apk {
			t.Errorf("message %s: delivery in %s, attempt in %s; want one shard", msg.ID, dpk, apk)
		}
		epPKs[dpk] = true
	}
	for _, tc := range []struct {
		name string // the index and whose items
		base string
		n    int
		got  map[string]bool
	}{
		{"IndexList of an app", msgBase, MessageShards, listPKs},
		{"IndexEndpoint of an endpoint", epBase, EndpointShards, epPKs},
	} {
		want := []string{tc.base} // shard 0: the key from before sharding
		for s := 1; s < tc.n; s++ {
			want = append(want, fmt.Sprintf("%s#%d", tc.base, s))
		}
		if d := cmp.Diff(want, slices.Sorted(maps.Keys(tc.got))); d != "" {
			t.Errorf("%s: partition keys (-want +got):\n%s", tc.name, d)
		}
	}

	// A new run rewrites the delivery in place: same shard.
	msg := f.msgs[1]
	before, _ := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID))
	if _, err := f.StartRun(f.ctx, msg, f.ep.ID, f.clock.Now()); err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	after, _ := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID))
	if got, want := stringAttr(after, AttrEndpointPK), stringAttr(before, AttrEndpointPK); got != want {
		t.Errorf("after StartRun the delivery is in %s, want %s as before", got, want)
	}
}

// TestShardedListsPage pages through the lists that read shards, with
// small pages so that consecutive items and cursors are in different
// shards, forward and backward, in both orders, filtered and not: every
// page is the one the merged order predicts.
func TestShardedListsPage(t *testing.T) {
	f := newShardedFixture(t)
	var msgIDs, attIDs, evenMsgs, evenAtts []string
	for i, msg := range f.msgs {
		msgIDs = append(msgIDs, msg.ID)
		attIDs = append(attIDs, f.atts[i].ID)
		if i%2 == 0 {
			evenMsgs = append(evenMsgs, msg.ID)
			evenAtts = append(evenAtts, f.atts[i].ID)
		}
	}
	success := webhook.StatusSuccess
	for _, tc := range []struct {
		name string
		want []string // ascending
		list func(webhook.ListOptions) ([]string, bool, error)
	}{
		{"Messages", msgIDs, f.listMessages(webhook.MessageFilter{})},
		{"MessagesOfEventType", evenMsgs, f.listMessages(webhook.MessageFilter{EventTypes: []string{"user.created"}})},
		{"DeliveriesByEndpoint", msgIDs, f.listDeliveries(webhook.DeliveryFilter{})},
		{"SuccessfulDeliveriesByEndpoint", evenMsgs, f.listDeliveries(webhook.DeliveryFilter{Statuses: []webhook.Status{webhook.StatusSuccess}})},
		{"AttemptsByEndpoint", attIDs, f.listAttempts(webhook.AttemptFilter{})},
		{"SuccessfulAttemptsByEndpoint", evenAtts, f.listAttempts(webhook.AttemptFilter{Status: &success})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkPages(t, tc.want, tc.list)
		})
	}
}

// checkPages walks a list whose keys are want (ascending) page by page,
// forward from the start and backward from its last item, in both
// orders, and checks every page's keys and More.
func checkPages(t *testing.T, want []string, list func(webhook.ListOptions) ([]string, bool, error)) {
	t.Helper()
	for _, asc := range []bool{false, true} {
		order := slices.Clone(want)
		if !asc {
			slices.Reverse(order)
		}
		for _, limit := range []int{1, 2, 5, len(order) + 1} {
			page := func(opts webhook.ListOptions, start, end int) bool {
				t.Helper()
				opts.Limit, opts.Ascending = limit, asc
				got, more, err := list(opts)
				if err != nil {
					t.Fatalf("list %+v: %v", opts, err)
				}
				wantMore := end < len(order)
				if opts.Backward {
					wantMore = start > 0
				}
				if d := cmp.Diff(order[start:end], got, cmpopts.EquateEmpty()); d != "" || more != wantMore {
					t.Fatalf("list %+v: got More %v, want %v; keys (-want +got):\n%s", opts, more, wantMore, d)
				}
				return more
			}
			var cursor string
			for i := 0; ; i += limit {
				if !page(webhook.ListOptions{Cursor: cursor}, i, min(i+limit, len(order))) {
					break
				}
				cursor = order[i+limit-1]
			}
			for end := len(order) - 1; end > 0; end -= limit {
				if !page(webhook.ListOptions{Cursor: order[end], Backward: true}, max(0, end-limit), end) {
					break
				}
			}
		}
	}
}

func (f *shardedFixture) listMessages(filter webhook.MessageFilter) func(webhook.ListOptions) ([]string, bool, error) {
	return func(opts webhook.ListOptions) ([]string, bool, error) {
		filter.AppID, filter.ListOptions = f.app.ID, opts
		p, err := f.ListMessages(f.ctx, filter)
		return keysOfPage(p, err, func(m webhook.Message) string { return m.ID })
	}
}

func (f *shardedFixture) listDeliveries(filter webhook.DeliveryFilter) func(webhook.ListOptions) ([]string, bool, error) {
	return func(opts webhook.ListOptions) ([]string, bool, error) {
		filter.AppID, filter.EndpointID, filter.ListOptions = f.app.ID, f.ep.ID, opts
		p, err := f.ListDeliveries(f.ctx, filter)
		return keysOfPage(p, err, func(d webhook.Delivery) string { return d.MsgID })
	}
}

func (f *shardedFixture) listAttempts(filter webhook.AttemptFilter) func(webhook.ListOptions) ([]string, bool, error) {
	return func(opts webhook.ListOptions) ([]string, bool, error) {
		filter.AppID, filter.EndpointID, filter.ListOptions = f.app.ID, f.ep.ID, opts
		p, err := f.ListAttempts(f.ctx, filter)
		return keysOfPage(p, err, func(a webhook.Attempt) string { return a.ID })
	}
}

// keysOfPage returns the keys of a page's items and its More.
func keysOfPage[T any](p webhook.Page[T], err error, key func(T) string) ([]string, bool, error) {
	if err != nil {
		return nil, false, err
	}
	keys := make([]string, len(p.Items))
	for i, it := range p.Items {
		keys[i] = key(it)
	}
	return keys, p.More, nil
}

// TestShardedReadCost pins what a read of a sharded partition sends: one
// Query per shard when each shard's first request holds its part of the
// page, and one per partition for the lists that are not sharded.
func TestShardedReadCost(t *testing.T) {
	f := newShardedFixture(t)
	for _, tc := range []struct {
		name string
		read func() error
		want map[string]int
	}{
		{"ListMessages", func() error {
			_, err := f.ListMessages(f.ctx, webhook.MessageFilter{AppID: f.app.ID, ListOptions: webhook.ListOptions{Limit: 5}})
			return err
		}, map[string]int{"Query": MessageShards, "BatchGetItem": 1}},
		{"ListDeliveriesByEndpoint", func() error {
			_, err := f.ListDeliveries(f.ctx, webhook.DeliveryFilter{AppID: f.app.ID, EndpointID: f.ep.ID, ListOptions: webhook.ListOptions{Limit: 5}})
			return err
		}, map[string]int{"Query": EndpointShards}},
		{"ListAttemptsByEndpoint", func() error {
			_, err := f.ListAttempts(f.ctx, webhook.AttemptFilter{AppID: f.app.ID, EndpointID: f.ep.ID})
			return err
		}, map[string]int{"Query": EndpointShards, "BatchGetItem": 1}},
		{"EndpointStats", func() error {
			_, err := f.EndpointStats(f.ctx, f.app.ID, f.ep.ID, time.Time{}, time.Time{})
			return err
		}, map[string]int{"Query": EndpointShards}},
		{"ListDeliveriesByMessage", func() error {
			_, err := f.ListDeliveries(f.ctx, webhook.DeliveryFilter{AppID: f.app.ID, MsgID: f.msgs[0].ID})
			return err
		}, map[string]int{"GetItem": 1, "Query": 1}}, // the message, for the deliveries it defers
		{"ListEndpoints", func() error {
			_, err := f.ListEndpoints(f.ctx, f.app.ID, webhook.ListOptions{})
			return err
		}, map[string]int{"Query": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.rec.reset()
			before := f.Consumed()
			if err := tc.read(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := f.rec.counts(); !maps.Equal(got, tc.want) {
				t.Errorf("%s sent %v, want %v", tc.name, got, tc.want)
			}
			t.Logf("%s: %.1f read units", tc.name, f.Consumed().Sub(before).ReadUnits)
		})
	}
}

// TestUnshardedItemsFound moves three in four of an endpoint's and an
// app's index entries to the partition keys items had before sharding
// (shard 0 now), as after an upgrade: the lists, the counts, cancel and
// delete still find every item, in the same order, although one shard
// holds most of them and must be read further while the others are done.
func TestUnshardedItemsFound(t *testing.T) {
	f := newShardedFixture(t)
	var msgIDs, attIDs []string
	for i, msg := range f.msgs {
		msgIDs = append(msgIDs, msg.ID)
		attIDs = append(attIDs, f.atts[i].ID)
		if i%4 == 3 {
			continue
		}
		f.setAttr(messageKey(f.app.ID, msg.ID), AttrListPK, "MSG#"+f.app.ID)
		f.setAttr(deliveryKey(f.app.ID, msg.ID, f.ep.ID), AttrEndpointPK, "EP#"+f.app.ID+"#"+f.ep.ID)
		f.setAttr(attemptKey(f.app.ID, msg.ID, f.atts[i].ID), AttrEndpointPK, "EP#"+f.app.ID+"#"+f.ep.ID)
	}
	t.Run("Lists", func(t *testing.T) {
		checkPages(t, msgIDs, f.listMessages(webhook.MessageFilter{}))
		checkPages(t, msgIDs, f.listDeliveries(webhook.DeliveryFilter{}))
		checkPages(t, attIDs, f.listAttempts(webhook.AttemptFilter{}))
	})
	t.Run("EndpointStats", func(t *testing.T) {
		stats, err := f.EndpointStats(f.ctx, f.app.ID, f.ep.ID, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("EndpointStats: %v", err)
		}
		half := len(f.msgs) / 2
		want := map[webhook.Status]int{webhook.StatusSuccess: half, webhook.StatusSending: half}
		if d := cmp.Diff(want, stats); d != "" {
			t.Errorf("EndpointStats (-want +got):\n%s", d)
		}
	})
	t.Run("CancelDeliveries", func(t *testing.T) {
		n, err := f.CancelDeliveries(f.ctx, f.app.ID, f.ep.ID, f.clock.Now())
		if err != nil {
			t.Fatalf("CancelDeliveries: %v", err)
		}
		if want := len(f.msgs) / 2; n != want {
			t.Errorf("CancelDeliveries canceled %d, want the %d sending ones", n, want)
		}
	})
	t.Run("DeleteApp", func(t *testing.T) {
		if err := f.DeleteApp(f.ctx, f.app.ID); err != nil {
			t.Fatalf("DeleteApp: %v", err)
		}
		for _, msg := range f.msgs {
			for _, k := range []key{messageKey(f.app.ID, msg.ID), deliveryKey(f.app.ID, msg.ID, f.ep.ID)} {
				if _, ok := f.rawItem(k); ok {
					t.Errorf("item %v outlived DeleteApp", k)
				}
			}
		}
	})
}

// TestDeleteEndpointShards deletes an endpoint whose deliveries are in
// every shard: none is left.
func TestDeleteEndpointShards(t *testing.T) {
	f := newShardedFixture(t)
	if err := f.DeleteEndpoint(f.ctx, f.app.ID, f.ep.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	for _, msg := range f.msgs {
		if _, ok := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID)); ok {
			t.Errorf("delivery of %s outlived DeleteEndpoint", msg.ID)
		}
	}
}

// setAttr sets a string attribute of a stored item, bypassing the Store.
func (f *fixture) setAttr(k key, attr, value string) {
	f.t.Helper()
	_, err := f.client.UpdateItem(f.ctx, &dynamodb.UpdateItemInput{
		TableName:                 &f.table,
		Key:                       k.item(),
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: item{":v": str(value)},
	})
	if err != nil {
		f.t.Fatalf("UpdateItem %v: %v", k, err)
	}
}

// TestShard checks the partition keys shard hands out.
func TestShard(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := webhook.NewID(webhook.PrefixMessage)
		pk := shard("EP#a#e", id, 8)
		if pk != shard("EP#a#e", id, 8) {
			t.Fatalf("shard(%s) differs between calls", id)
		}
		seen[pk] = true
	}
	if want := shards("EP#a#e", 8); !maps.Equal(seen, setOf(want)) {
		t.Errorf("1000 ids went to %v, want every one of %v", slices.Sorted(maps.Keys(seen)), want)
	}
	if got := shards("MSG#a", 3); !slices.Equal(got, []string{"MSG#a", "MSG#a#1", "MSG#a#2"}) {
		t.Errorf("shards(MSG#a, 3) = %v", got)
	}
}

func setOf(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// TestForEach checks the bound on calls in flight, that every call runs
// when none fails, and that the first failure is returned and cancels
// the calls still running.
func TestForEach(t *testing.T) {
	t.Run("Bounded", func(t *testing.T) {
		var running, peak, calls atomic.Int32
		err := forEach(t.Context(), 3*maxParallel, func(ctx context.Context, i int) error {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			calls.Add(1)
			return nil
		})
		if err != nil {
			t.Fatalf("forEach: %v", err)
		}
		if calls.Load() != 3*maxParallel || peak.Load() > maxParallel {
			t.Errorf("forEach made %d calls, at most %d at once; want %d, at most %d", calls.Load(), peak.Load(), 3*maxParallel, maxParallel)
		}
	})
	t.Run("FirstError", func(t *testing.T) {
		boom := errors.New("boom")
		var canceled atomic.Int32
		err := forEach(t.Context(), 4, func(ctx context.Context, i int) error {
			if i == 2 {
				return boom
			}
			select {
			case <-ctx.Done():
				canceled.Add(1)
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return nil
			}
		})
		if !errors.Is(err, boom) {
			t.Errorf("forEach = %v, want %v", err, boom)
		}
		if canceled.Load() != 3 {
			t.Errorf("%d calls saw their context canceled, want the other 3", canceled.Load())
		}
	})
}
