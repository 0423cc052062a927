package dynamo

import (
	"context"
	"hash/fnv"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Write sharding. One index partition takes about 1000 writes a second,
// and the sort keys of an endpoint's deliveries and attempts and of an
// app's messages grow with time (KSUIDs), so DynamoDB cannot split a hot
// partition by sort key either: every write lands at its end. The writes
// of one endpoint (IndexEndpoint) and of one app's messages (IndexList)
// are therefore spread over several partitions, chosen by message id, and
// reads query all of them and merge them in sort key order.
//
// Shard 0 is the partition key itself, without a suffix: it is the key
// every item had before the index was sharded, so those items are read
// as part of shard 0 and need neither a migration nor an extra query.

// shard returns the partition of base that the items of the message
// belong to, one of n: base for shard 0, base + "#<s>" for shard s. A
// message's delivery to an endpoint and its attempts there share a shard,
// and an item written again keeps its shard.
func shard(base, msgID string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(msgID))
	if s := h.Sum32() % uint32(n); s != 0 {
		return base + "#" + strconv.Itoa(int(s))
	}
	return base
}

// shards returns the n partitions of base, shard 0 first.
func shards(base string, n int) []string {
	pks := make([]string, n)
	pks[0] = base
	for s := 1; s < n; s++ {
		pks[s] = base + "#" + strconv.Itoa(s)
	}
	return pks
}

// maxParallel bounds the requests one call of the Store has in flight
// at once: one per shard of the widest sharded partition.
const maxParallel = max(MessageShards, EndpointShards)

// forEach calls fn(ctx, i) for i in [0, n), up to maxParallel calls at a
// time, and returns the first error. The context fn gets is canceled once
// a call fails, so the others stop early.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	started := 0
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	if first == nil && started < n {
		first = context.Cause(ctx) // the caller's context ended first
	}
	return first
}

// eachShardPage runs the query that build returns for each partition to
// its end, the partitions concurrently (forEach), and calls fn with each
// page's items; fn must be safe for concurrent use.
func (s *Store) eachShardPage(ctx context.Context, pks []string, build func(pk string) *dynamodb.QueryInput, fn func([]item) error) error {
	return forEach(ctx, len(pks), func(ctx context.Context, i int) error {
		return s.eachPage(ctx, build(pks[i]), fn)
	})
}
