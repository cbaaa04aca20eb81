package refbackend

import "testing"

// FuzzDecodeCursor: a cursor comes from the client through ECB, so any string
// must be refused cleanly, and every cursor the backend issues must decode.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{encodeCursor(1), encodeCursor(1 << 62), "", "YzE6", "YzE6LTE", "c1:5", "!!", "YzI6NQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		seq, err := decodeCursor(c)
		if err != nil {
			return
		}
		if seq <= 0 {
			t.Fatalf("cursor %q decoded to %d", c, seq)
		}
		if back, err := decodeCursor(encodeCursor(seq)); err != nil || back != seq {
			t.Fatalf("round trip of %d: %d, %v", seq, back, err)
		}
	})
}
