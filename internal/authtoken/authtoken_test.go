package authtoken

import (
	"strings"
	"testing"
)

func TestGenerateHashMatch(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if a == b {
		t.Fatal("two generated tokens are equal")
	}
	if !strings.HasPrefix(a, Prefix) || len(a) < len(Prefix)+40 {
		t.Fatalf("token %q: want prefix %q and 32 bytes of entropy", a, Prefix)
	}
	h := Hash(a)
	if !Matches(h, a) {
		t.Error("token does not match its own hash")
	}
	if Matches(h, b) || Matches(h, "") || Matches(h, a+"x") {
		t.Error("another token matches")
	}
	got, err := DecodeHash(EncodeHash(h) + "\n")
	if err != nil || got != h {
		t.Fatalf("hash round trip: got %x, %v; want %x", got, err, h)
	}
	for _, bad := range []string{"", "zz", EncodeHash(h)[:62]} {
		if _, err := DecodeHash(bad); err == nil {
			t.Errorf("DecodeHash(%q): want an error", bad)
		}
	}
}

func TestGenerateApp(t *testing.T) {
	a, err := GenerateApp()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateApp()
	if a == b {
		t.Fatal("two generated app tokens are equal")
	}
	if !strings.HasPrefix(a, AppPrefix) || len(a) < len(AppPrefix)+43 {
		t.Fatalf("app token %q: want prefix %q and 32 bytes of entropy", a, AppPrefix)
	}
	if strings.HasPrefix(a, Prefix) || AppPrefix == Prefix {
		t.Fatalf("app token %q looks like an admin token", a)
	}
	if got := EncodeHash(Hash(a)); len(got) != 64 {
		t.Errorf("stored hash %q: want 64 hex digits", got)
	}
}
