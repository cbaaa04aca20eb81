package hub

import "time"

// ring keeps the newest pushes of a thread, oldest first, bounded by count.
type ring struct {
	buf   []*Push
	start int // index of the oldest
	n     int
}

func newRing(size int) ring { return ring{buf: make([]*Push, size)} }

// add appends p and returns the push it pushed out (nil while not full).
func (r *ring) add(p *Push) (evicted *Push) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = p
		r.n++
		return nil
	}
	evicted = r.buf[r.start]
	r.buf[r.start] = p
	r.start = (r.start + 1) % len(r.buf)
	return evicted
}

func (r *ring) at(i int) *Push { return r.buf[(r.start+i)%len(r.buf)] }

// since returns the pushes after offset, provided the ring still holds the one
// right after it and none of them is older than notBefore.
func (r *ring) since(offset uint64, notBefore time.Time) ([]*Push, bool) {
	if r.n == 0 {
		return nil, false
	}
	first := r.at(0).Offset
	if offset+1 < first {
		return nil, false
	}
	out := make([]*Push, 0, r.n)
	for i := int(offset + 1 - first); i < r.n; i++ {
		p := r.at(i)
		if p.At.Before(notBefore) {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func (r *ring) newestAfter(t time.Time) bool {
	return r.n > 0 && r.at(r.n-1).At.After(t)
}
