package epoch

import "testing"

// TestNew checks the form of an epoch name, and that two are not the same.
func TestNew(t *testing.T) {
	a, b := New(), New()
	if len(a) != 16 || len(b) != 16 {
		t.Errorf("epochs %q and %q: want 16 hex digits", a, b)
	}
	if a == b {
		t.Errorf("two epochs are both %q", a)
	}
}
