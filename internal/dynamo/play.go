package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/webhook"
)

// PlayStore is the play.Store of the AWS deployment: what the dashboard's
// Play URLs receive, in the Store's table, so that every Lambda instance
// sees it. Each token has a partition PLAY#<token> holding its endpoint
// link and its newest requests; every item carries TTLAttribute (see the
// package doc). It is safe for concurrent use.
type PlayStore struct {
	s *Store
}

var _ play.Store = (*PlayStore)(nil)

// Play returns the play.Store in s's table. It shares s's client and
// clock.
func (s *Store) Play() *PlayStore { return &PlayStore{s: s} }

// playTrimBatch is how many surplus requests one Add deletes at most. One
// Add normally leaves one request beyond play.Keep; racing Adds can leave
// a few, which a later Add removes. Requests never returns more than
// play.Keep, so a surplus is never seen.
const playTrimBatch = maxBatchWrite

type playLinkItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	AppID      string `dynamodbav:"appId"`
	EndpointID string `dynamodbav:"endpointId"`
	ExpMs      int64  `dynamodbav:"expMs"`
	ExpiresAt  int64  `dynamodbav:"expiresAt"`
}

type playHeaderItem struct {
	Name  string `dynamodbav:"n,omitempty"`
	Value string `dynamodbav:"v,omitempty"`
}

type playRequestItem struct {
	PK          string           `dynamodbav:"pk"`
	SK          string           `dynamodbav:"sk"`
	ReceivedAt  int64            `dynamodbav:"ts,omitempty"`
	Method      string           `dynamodbav:"method,omitempty"`
	Headers     []playHeaderItem `dynamodbav:"headers,omitempty"`
	Body        []byte           `dynamodbav:"body,omitempty"`
	Truncated   bool             `dynamodbav:"truncated,omitempty"`
	SigChecked  bool             `dynamodbav:"sigChecked,omitempty"`
	SigVerified bool             `dynamodbav:"sigVerified,omitempty"`
	SigDetail   string           `dynamodbav:"sigDetail,omitempty"`
	ExpMs       int64            `dynamodbav:"expMs"`
	ExpiresAt   int64            `dynamodbav:"expiresAt"`
}

func decodePlayRequest(it item) (play.Request, error) {
	var r playRequestItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return play.Request{}, err
	}
	req := play.Request{
		ReceivedAt: fromMillis(r.ReceivedAt), Method: r.Method, Body: r.Body, Truncated: r.Truncated,
		Signature: play.SignatureCheck{Checked: r.SigChecked, Verified: r.SigVerified, Detail: r.SigDetail},
	}
	for _, h := range r.Headers {
		req.Headers = append(req.Headers, play.Header{Name: h.Name, Value: h.Value})
	}
	return req, nil
}

// Link implements play.Store with one PutItem of the link item, which
// lives for play.TTL.
func (p *PlayStore) Link(ctx context.Context, token string, link play.Link) error {
	exp := p.s.clock.Now().Add(play.TTL)
	k := playLinkKey(token)
	it, err := attributevalue.MarshalMap(playLinkItem{
		PK: k.pk, SK: k.sk, AppID: link.AppID, EndpointID: link.EndpointID, ExpMs: millis(exp), ExpiresAt: ttl(exp),
	})
	if err != nil {
		return wrapf(err, "play: link")
	}
	_, err = p.s.putItem(ctx, &dynamodb.PutItemInput{Item: it})
	return wrapf(err, "play: link")
}

// LinkOf implements play.Store with one consistent GetItem.
func (p *PlayStore) LinkOf(ctx context.Context, token string) (play.Link, error) {
	it, found, err := p.s.getItem(ctx, playLinkKey(token), true)
	if err != nil {
		return play.Link{}, wrapf(err, "play: read link")
	}
	if !found || !visible(numAttr(it, "expMs"), p.s.clock.Now()) {
		return play.Link{}, webhook.NotFound("play: no endpoint linked")
	}
	var r playLinkItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return play.Link{}, wrapf(err, "play: read link")
	}
	return play.Link{AppID: r.AppID, EndpointID: r.EndpointID}, nil
}

// Add implements play.Store:
//
//  1. PutItem of the request under a new sort key, living for play.TTL;
//  2. UpdateItem of the link's expiry, on condition that the link exists
//     and has not expired (an expired link stays expired);
//  3. a keys-only Query of the newest play.Keep + playTrimBatch requests,
//     and one BatchWriteItem deleting those beyond play.Keep, if any.
//
// Step 3 reads eventually consistently: a stale read can only miss
// recent requests, which makes it delete fewer, never a kept one. A crash
// or an error after step 1 leaves the request kept (the error is still
// returned) and maybe a surplus, which the next Add trims.
func (p *PlayStore) Add(ctx context.Context, token string, req play.Request) error {
	now := p.s.clock.Now()
	exp := now.Add(play.TTL)
	req = play.Cut(req)
	r := playRequestItem{
		PK: playPartition(token), SK: playRequestSortKey(now),
		ReceivedAt: millis(req.ReceivedAt), Method: req.Method, Body: req.Body, Truncated: req.Truncated,
		SigChecked: req.Signature.Checked, SigVerified: req.Signature.Verified, SigDetail: req.Signature.Detail,
		ExpMs: millis(exp), ExpiresAt: ttl(exp),
	}
	for _, h := range req.Headers {
		r.Headers = append(r.Headers, playHeaderItem{Name: h.Name, Value: h.Value})
	}
	it, err := attributevalue.MarshalMap(r)
	if err != nil {
		return wrapf(err, "play: add")
	}
	if _, err := p.s.putItem(ctx, &dynamodb.PutItemInput{Item: it}); err != nil {
		return wrapf(err, "play: add")
	}

	var e expr
	u := update{e: &e}
	u.set("expMs", num(millis(exp)))
	u.set(TTLAttribute, num(ttl(exp)))
	cond := e.exists(AttrPK) + " AND " + e.n("expMs") + " > " + e.v(num(now.UnixMilli()))
	_, err = p.s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       playLinkKey(token).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if err != nil && !conditionFailed(err) {
		return wrapf(err, "play: renew link")
	}
	return wrapf(p.trim(ctx, token), "play: trim")
}

// trim deletes up to playTrimBatch of token's requests beyond play.Keep,
// the oldest.
func (p *PlayStore) trim(ctx context.Context, token string) error {
	var e expr
	cond := partitionCond(&e, AttrPK, playPartition(token), AttrSK, playRequestPrefix)
	in := &dynamodb.QueryInput{
		KeyConditionExpression: &cond,
		ProjectionExpression:   keysOnly(&e),
		ScanIndexForward:       aws.Bool(false),
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.nameMap(), e.valueMap()
	keys, err := p.newest(ctx, in, play.Keep+playTrimBatch)
	if err != nil || len(keys) <= play.Keep {
		return err
	}
	return p.s.deleteMany(ctx, keysOf(keys[play.Keep:]))
}

// newest runs a newest-first query of a token's requests until it has
// read n items or the partition's end; a page holds at most 1 MB, so n
// requests with large bodies take several.
func (p *PlayStore) newest(ctx context.Context, in *dynamodb.QueryInput, n int) ([]item, error) {
	var items []item
	for len(items) < n {
		in.Limit = aws.Int32(int32(n - len(items)))
		out, err := p.s.query(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return items, nil
}

// Requests implements play.Store with a consistent Query of the newest
// play.Keep requests, leaving out expired ones (DynamoDB's TTL deletes
// them lazily).
func (p *PlayStore) Requests(ctx context.Context, token string) ([]play.Request, error) {
	now := p.s.clock.Now()
	var e expr
	cond := partitionCond(&e, AttrPK, playPartition(token), AttrSK, playRequestPrefix)
	items, err := p.newest(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
	}, play.Keep)
	if err != nil {
		return nil, wrapf(err, "play: requests")
	}
	var reqs []play.Request
	for _, it := range items {
		if !visible(numAttr(it, "expMs"), now) {
			continue
		}
		req, err := decodePlayRequest(it)
		if err != nil {
			return nil, wrapf(err, "play: requests")
		}
		reqs = append(reqs, req)
	}
	return reqs, nil
}
