package play_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/play/playtest"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

func TestMemory(t *testing.T) {
	playtest.Run(t, func(t *testing.T, clock webhook.Clock) play.Store {
		return play.NewMemory(clock)
	})
}

// Memory keeps at most MaxMemoryTokens tokens and forgets the one used
// least recently.
func TestMemoryForgetsTheLeastRecentlyUsedToken(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(storetest.Epoch)
	m := play.NewMemory(clock)
	for i := range play.MaxMemoryTokens + 1 {
		clock.Advance(time.Millisecond)
		if err := m.Add(ctx, fmt.Sprint("tok", i), play.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if reqs, _ := m.Requests(ctx, "tok0"); len(reqs) != 0 {
		t.Errorf("the least recently used token was kept beyond %d tokens", play.MaxMemoryTokens)
	}
	for _, tok := range []string{"tok1", fmt.Sprint("tok", play.MaxMemoryTokens)} {
		if reqs, _ := m.Requests(ctx, tok); len(reqs) != 1 {
			t.Errorf("%s: got %d requests, want 1", tok, len(reqs))
		}
	}
}
