package sqlite

import (
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// TestGetAppKeepsWhatItRead: GetApp answers from the apps it read while
// the store has not changed, with copies (a caller changing one changes
// nothing kept), and reads again after any write to apps: an update (by
// id and by uid, old and new), a delete.
func TestGetAppKeepsWhatItRead(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	s := openTest(t, clock)
	ctx := t.Context()
	rate := 5
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: "acme", Name: "Acme", Metadata: map[string]string{"k": "v"},
		ThrottleRate: &rate, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	if err := s.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	get := func(idOrUID string) *webhook.App {
		t.Helper()
		a, err := s.GetApp(ctx, idOrUID)
		if err != nil {
			t.Fatalf("GetApp(%s): %v", idOrUID, err)
		}
		return a
	}
	for i := range 3 { // read, then kept
		got := get("acme")
		if got.Name != "Acme" || got.Metadata["k"] != "v" || *got.ThrottleRate != 5 {
			t.Fatalf("GetApp #%d: a change to a returned app reached it: %+v", i+1, got)
		}
		got.Name, got.Metadata["k"], *got.ThrottleRate = "changed", "changed", 99
	}

	get(app.ID) // kept by id too
	// Kept: a write in the apps table behind the store's back is not seen
	// (that is how the test knows the second read did not happen)...
	if _, err := s.w.conn.ExecContext(ctx, "UPDATE apps SET name = 'behind' WHERE id = ?", app.ID); err != nil {
		t.Fatal(err)
	}
	if got := get(app.ID).Name; got != "Acme" {
		t.Fatalf("GetApp read the store again without a change: name %q", got)
	}
	// ... until the store changes.
	upd := get(app.ID)
	upd.UID, upd.Name = "acme-2", "Acme 2"
	if err := s.UpdateApp(ctx, upd, upd.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if got := get(app.ID).Name; got != "Acme 2" {
		t.Errorf("after UpdateApp, by id: %q", got)
	}
	if got := get("acme-2").Name; got != "Acme 2" {
		t.Errorf("after UpdateApp, by the new uid: %q", got)
	}
	if _, err := s.GetApp(ctx, "acme"); !webhook.IsNotFound(err) {
		t.Errorf("after UpdateApp, by the old uid: %v, want NotFound", err)
	}
	if err := s.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetApp(ctx, app.ID); !webhook.IsNotFound(err) {
		t.Errorf("after DeleteApp: %v, want NotFound", err)
	}
}
