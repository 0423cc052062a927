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
