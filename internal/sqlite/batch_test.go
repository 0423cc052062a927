package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// scratchBatch is a batch kind over the group fixture's scratch table:
// it inserts its items (keys) in one statement, and logs each call's
// items. An item "fails" makes the call fail; an item "gone" fails
// alone, having written nothing.
type scratchBatch struct {
	kind  *batchKind
	mu    sync.Mutex
	calls [][]string
}

func newScratchBatch() *scratchBatch {
	b := &scratchBatch{}
	b.kind = &batchKind{run: func(tx querier, items []any) ([]error, error) {
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = it.(string)
		}
		b.mu.Lock()
		b.calls = append(b.calls, keys)
		b.mu.Unlock()
		errs := make([]error, len(keys))
		var args []any
		for i, k := range keys {
			switch k {
			case "fails":
				return nil, errors.New("the batch failed")
			case "gone":
				errs[i] = webhook.NotFound("gone")
				continue
			}
			args = append(args, k)
		}
		_, err := tx.ExecContext(context.Background(), "INSERT INTO scratch VALUES "+strings.TrimSuffix(strings.Repeat("(?), ", len(args)), ", "), args...)
		return errs, err
	}}
	return b
}

func (b *scratchBatch) log() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// TestGroupCommitRunsABatchKindTogether: the writes of a batch kind next
// to each other in a group run in one call of the kind's run, not each
// through its own fn; a write of another kind between them splits the
// run; a write that the run reports failed without writing fails alone,
// with no second run; and a run that fails makes the group run again,
// each write through its fn, so that only the write at fault fails.
func TestGroupCommitRunsABatchKindTogether(t *testing.T) {
	type write struct {
		key     string
		batched bool
	}
	tests := []struct {
		name       string
		writes     []write
		wantCalls  [][]string // the batch's calls
		wantFns    []string   // the writes that ran alone
		wantErr    map[string]bool
		wantAgain  bool // the group ran again, with savepoints
		wantStored []string
	}{{
		name:       "runs",
		writes:     []write{{"a", true}, {"b", true}, {"plain", false}, {"c", true}, {"d", true}, {"e", true}},
		wantCalls:  [][]string{{"a", "b"}, {"c", "d", "e"}},
		wantFns:    []string{"plain"},
		wantStored: []string{"a", "b", "c", "d", "e", "plain"},
	}, {
		name:       "a run of one runs its fn",
		writes:     []write{{"plain", false}, {"a", true}, {"plain2", false}},
		wantFns:    []string{"a", "plain", "plain2"},
		wantStored: []string{"a", "plain", "plain2"},
	}, {
		name:       "one write gone",
		writes:     []write{{"a", true}, {"gone", true}, {"b", true}},
		wantCalls:  [][]string{{"a", "gone", "b"}},
		wantErr:    map[string]bool{"gone": true},
		wantStored: []string{"a", "b"},
	}, {
		name:       "the run fails",
		writes:     []write{{"plain", false}, {"a", true}, {"fails", true}, {"b", true}},
		wantCalls:  [][]string{{"a", "fails", "b"}},
		wantFns:    []string{"a", "b", "fails", "plain", "plain"},
		wantErr:    map[string]bool{"fails": true},
		wantAgain:  true,
		wantStored: []string{"a", "b", "plain"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroupFixture(t)
			b := newScratchBatch()
			var mu sync.Mutex
			var fns []string
			writes := make([]func() error, len(tt.writes))
			for i, w := range tt.writes {
				fn := func(tx querier) error {
					mu.Lock()
					fns = append(fns, w.key)
					mu.Unlock()
					errs, err := b.kind.run(tx, []any{w.key})
					if err != nil {
						return err
					}
					return noWrites(errs[0])
				}
				if !w.batched {
					fn = func(tx querier) error {
						mu.Lock()
						fns = append(fns, w.key)
						mu.Unlock()
						return insert(w.key)(tx)
					}
				}
				writes[i] = func() error {
					if w.batched {
						return g.s.w.doBatch(context.Background(), b.kind, w.key, fn)
					}
					return g.s.w.do(context.Background(), fn)
				}
			}
			results := g.runGroup(writes...)
			for i, w := range tt.writes {
				if r := results[i]; r.panicked != nil || (r.err != nil) != tt.wantErr[w.key] {
					t.Errorf("%s: got err %v, panic %v; want an error: %v", w.key, r.err, r.panicked, tt.wantErr[w.key])
				}
			}
			calls := b.log()
			if n := len(tt.wantCalls); len(calls) < n || !slices.EqualFunc(calls[:n], tt.wantCalls, slices.Equal) {
				t.Errorf("batch calls %v, want %v first", calls, tt.wantCalls)
			}
			slices.Sort(fns)
			if !slices.Equal(fns, tt.wantFns) {
				t.Errorf("writes run alone %v, want %v", fns, tt.wantFns)
			}
			if again := g.savepointsRan(); again != tt.wantAgain {
				t.Errorf("the group ran again: %v, want %v", again, tt.wantAgain)
			}
			stored := g.keys()
			delete(stored, "holder")
			var got []string
			for k := range stored {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantStored) {
				t.Errorf("stored %v, want %v", got, tt.wantStored)
			}
		})
	}
}

// TestRecordAttemptsInOneGroup: attempts recorded in one group are
// stored by one INSERT and each caller gets its delivery advanced; one
// whose delivery is gone fails alone, and one whose attempt id is taken
// fails alone (the group runs again to tell which), the others stored.
func TestRecordAttemptsInOneGroup(t *testing.T) {
	f := newFixture(t)
	g := groupFixtureOn(t, f.s)
	other := f.endpoint()
	var msgs []*webhook.Message
	for range 2 {
		msgs = append(msgs, f.message(time.Hour), f.messageTo(other))
	}
	result := func(msg *webhook.Message, ep *webhook.Endpoint, status webhook.Status) webhook.AttemptResult {
		r := success(msg, ep)
		r.Attempt.Timestamp = f.clock.Now()
		if status != webhook.StatusSuccess {
			r.Attempt.Status, r.Status, r.NextAttemptAt = status, webhook.StatusSending, f.clock.Now().Add(time.Minute)
		}
		return r
	}
	results := []webhook.AttemptResult{
		result(msgs[0], f.ep, webhook.StatusSuccess),
		result(msgs[1], other, webhook.StatusFail),
		result(msgs[2], f.ep, webhook.StatusSuccess),
		result(msgs[3], other, webhook.StatusSuccess),
	}
	gone := result(msgs[0], f.ep, webhook.StatusSuccess)
	gone.Attempt.MsgID = webhook.NewID(webhook.PrefixMessage)

	t.Run("together", func(t *testing.T) {
		got := make([]*webhook.Delivery, len(results))
		writes := []func() error{func() error { _, err := f.s.RecordAttempt(f.ctx, gone); return err }}
		for i, res := range results {
			writes = append(writes, func() (err error) {
				got[i], err = f.s.RecordAttempt(f.ctx, res)
				return err
			})
		}
		out := g.runGroup(writes...)
		if !webhook.IsNotFound(out[0].err) {
			t.Errorf("the attempt of a delivery that is not there: err %v, want not found", out[0].err)
		}
		for i, res := range results {
			if r := out[i+1]; r.err != nil || r.panicked != nil {
				t.Fatalf("RecordAttempt %d: err %v, panic %v", i, r.err, r.panicked)
			}
			if got[i] == nil || got[i].Attempts != 1 || got[i].Status != res.Status || got[i].MsgID != res.Attempt.MsgID {
				t.Errorf("RecordAttempt %d returned %+v, want the delivery at 1 attempt, status %v", i, got[i], res.Status)
			}
			if _, err := f.s.GetAttempt(f.ctx, f.app.ID, res.Attempt.MsgID, res.Attempt.ID); err != nil {
				t.Errorf("attempt %d: %v", i, err)
			}
		}
		if g.savepointsRan() {
			t.Error("the group ran again: the missing delivery wrote nothing")
		}
		if _, ok := f.s.w.stmts[insertAttemptsSQL[len(results)]]; !ok {
			t.Errorf("no INSERT of %d attempts ran", len(results))
		}
		// other: failed, then succeeded; f.ep: succeeded.
		for _, ep := range []*webhook.Endpoint{f.ep, other} {
			if e, err := f.s.GetEndpoint(f.ctx, f.app.ID, ep.ID); err != nil || !e.FailingSince.IsZero() {
				t.Errorf("endpoint %s: failing since %v (%v), want healthy", ep.ID, e.FailingSince, err)
			}
		}
	})

	t.Run("an attempt id taken", func(t *testing.T) {
		fresh := newFixture(t) // a writer that has not run the group above
		g := groupFixtureOn(t, fresh.s)
		a, c := fresh.message(time.Hour), fresh.message(time.Hour)
		first := result(a, fresh.ep, webhook.StatusSuccess)
		dup := first // the same result twice: the second finds its delivery moved on, and its attempt stored
		third := result(c, fresh.ep, webhook.StatusSuccess)
		out := g.runGroup(
			func() error { _, err := fresh.s.RecordAttempt(fresh.ctx, first); return err },
			func() error { _, err := fresh.s.RecordAttempt(fresh.ctx, dup); return err },
			func() error { _, err := fresh.s.RecordAttempt(fresh.ctx, third); return err },
		)
		if out[0].err != nil || out[2].err != nil {
			t.Errorf("the attempts with ids of their own: %v, %v; want stored", out[0].err, out[2].err)
		}
		if webhook.ErrorKind(out[1].err) != webhook.KindConflict {
			t.Errorf("the attempt whose id is taken: err %v, want a conflict", out[1].err)
		}
		if !g.savepointsRan() {
			t.Error("the group did not run again")
		}
		for _, m := range []*webhook.Message{a, c} {
			if d := fresh.delivery(m); d.Attempts != 1 {
				t.Errorf("delivery of %s at %d attempts, want 1", m.ID, d.Attempts)
			}
			p, err := fresh.s.ListAttempts(fresh.ctx, webhook.AttemptFilter{AppID: fresh.app.ID, MsgID: m.ID})
			if err != nil || len(p.Items) != 1 {
				t.Errorf("attempts of %s: %d (%v), want 1", m.ID, len(p.Items), err)
			}
		}
	})
}

// TestUpdateHealthFollowsAttemptsInOrder: the endpoints' health after
// the attempts of a group, one UPDATE per endpoint, is what it would be
// after each attempt's own UPDATE in order, from any starting state.
func TestUpdateHealthFollowsAttemptsInOrder(t *testing.T) {
	f := newFixture(t)
	eps := []*webhook.Endpoint{f.ep, f.endpoint(), f.endpoint()}
	rng := rand.New(rand.NewPCG(1, 2))
	base := f.clock.Now()
	setHealth := func(since []time.Time) {
		for i, ep := range eps {
			if _, err := f.s.exec(f.ctx, "UPDATE endpoints SET failing_since = ? WHERE id = ?", ms(since[i]), ep.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	health := func() []time.Time {
		out := make([]time.Time, len(eps))
		for i, ep := range eps {
			e, err := f.s.GetEndpoint(f.ctx, f.app.ID, ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = e.FailingSince
		}
		return out
	}
	for round := range 200 {
		start := make([]time.Time, len(eps))
		for i := range start {
			if rng.IntN(2) == 0 {
				start[i] = base.Add(-time.Duration(1+rng.IntN(100)) * time.Hour)
			}
		}
		recs := make([]*recordWrite, 1+rng.IntN(12))
		var desc []string
		for i := range recs {
			ep := eps[rng.IntN(len(eps))]
			status := webhook.StatusSuccess
			if rng.IntN(2) == 0 {
				status = webhook.StatusFail
			}
			recs[i] = &recordWrite{res: webhook.AttemptResult{Attempt: webhook.Attempt{
				AppID: f.app.ID, EndpointID: ep.ID, Status: status, Timestamp: base.Add(time.Duration(i) * time.Second),
			}}}
			desc = append(desc, fmt.Sprintf("%d:%v", slices.Index(eps, ep), status))
		}

		setHealth(start)
		for _, rec := range recs {
			if err := f.s.inTx(f.ctx, func(tx querier) error { return updateHealth(f.ctx, tx, []*recordWrite{rec}) }); err != nil {
				t.Fatal(err)
			}
		}
		want := health()

		setHealth(start)
		if err := f.s.inTx(f.ctx, func(tx querier) error { return updateHealth(f.ctx, tx, recs) }); err != nil {
			t.Fatal(err)
		}
		if got := health(); !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("round %d: from %v, attempts %v: failing since %v together, %v one by one", round, start, desc, got, want)
		}
	}
}
