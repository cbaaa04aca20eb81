// Package smallset owns Set, a set of comparable values for the many
// per-connection and per-user sets that hold one or a few members (a
// connection's threads, a user's connections): the first member in the Set
// itself, the others in a slice while they are few and a map once they are
// many, so that the common case, one member, costs the Set's own words and
// no allocation (issue 14, idle memory).
//
// A Set is not safe for concurrent use; its owner's lock guards it. A Set
// is a value: one stored in a map is read, changed and stored back.
package smallset

import "iter"

// spill is the size above which a Set moves its members into a map:
// below it a linear scan of a slice is as fast as hashing.
const spill = 16

// Set is a set of T. The zero Set is empty and ready to use. Its first
// member is held in the Set itself, so that the usual Set of one costs no
// allocation at all; the others are in a slice, then a map.
//
// one holds a member unless it is T's zero value: a zero member (a valid
// one) lives in more. So a Set needs no count of its own, a word fewer
// than with one, in the maps of per-user Sets that every connection has.
type Set[T comparable] struct {
	one  T        // a member, unless zero
	more *more[T] // the members beside one; nil when there are none
}

// more holds a Set's members beside its first.
type more[T comparable] struct {
	few  []T            // the members while len ≤ spill; nil once spilled
	many map[T]struct{} // the members once spilled
}

func (m *more[T]) len() int {
	if m.many != nil {
		return len(m.many)
	}
	return len(m.few)
}

func (m *more[T]) has(v T) bool {
	if m.many != nil {
		_, ok := m.many[v]
		return ok
	}
	for _, x := range m.few {
		if x == v {
			return true
		}
	}
	return false
}

func (m *more[T]) add(v T) {
	if m.many != nil {
		m.many[v] = struct{}{}
		return
	}
	if len(m.few) < spill {
		m.few = append(m.few, v)
		return
	}
	m.many = make(map[T]struct{}, 2*spill)
	for _, x := range m.few {
		m.many[x] = struct{}{}
	}
	m.many[v] = struct{}{}
	m.few = nil
}

// remove drops v, a member. A spilled set stays a map until it is empty: a
// set that grew large once tends to again.
func (m *more[T]) remove(v T) {
	if m.many != nil {
		delete(m.many, v)
		return
	}
	for i, x := range m.few {
		if x == v {
			last := len(m.few) - 1
			m.few[i] = m.few[last]
			var zero T
			m.few[last] = zero // let the removed value be collected
			m.few = m.few[:last]
			return
		}
	}
}

// take removes and returns any member.
func (m *more[T]) take() T {
	if m.many != nil {
		for v := range m.many {
			delete(m.many, v)
			return v
		}
	}
	last := len(m.few) - 1
	v := m.few[last]
	var zero T
	m.few[last] = zero
	m.few = m.few[:last]
	return v
}

// Len returns the number of members.
func (s *Set[T]) Len() int {
	var zero T
	n := 0
	if s.one != zero {
		n = 1
	}
	if s.more != nil {
		n += s.more.len()
	}
	return n
}

// Has reports whether v is a member.
func (s *Set[T]) Has(v T) bool {
	var zero T
	return v != zero && s.one == v || s.more != nil && s.more.has(v)
}

// Add makes v a member and reports whether it was not one before.
func (s *Set[T]) Add(v T) bool {
	if s.Has(v) {
		return false
	}
	var zero T
	if v != zero && s.one == zero {
		s.one = v
		return true
	}
	if s.more == nil {
		s.more = &more[T]{}
	}
	s.more.add(v)
	return true
}

// Remove drops v and reports whether it was a member. When one goes,
// another member takes its place, so that a Set back to one member holds
// it in itself again.
func (s *Set[T]) Remove(v T) bool {
	var zero T
	switch {
	case v != zero && s.one == v:
		s.one = zero // let the removed value be collected
		if s.more != nil {
			if x := s.more.take(); x != zero {
				s.one = x
			} else {
				s.more.add(x) // the zero member stays beside
			}
		}
	case s.more != nil && s.more.has(v):
		s.more.remove(v)
	default:
		return false
	}
	if s.more != nil && s.more.len() == 0 {
		s.more = nil
	}
	return true
}

// All yields every member once, in no particular order. The Set must not
// change while All runs.
func (s *Set[T]) All() iter.Seq[T] {
	return func(yield func(T) bool) {
		var zero T
		if s.one != zero && !yield(s.one) {
			return
		}
		if s.more == nil {
			return
		}
		if s.more.many != nil {
			for v := range s.more.many {
				if !yield(v) {
					return
				}
			}
			return
		}
		for _, v := range s.more.few {
			if !yield(v) {
				return
			}
		}
	}
}

// AddTo adds v to the Set of key in m, making the Set when key has none.
func AddTo[K, T comparable](m map[K]Set[T], key K, v T) {
	s := m[key]
	s.Add(v)
	m[key] = s
}

// RemoveFrom drops v from the Set of key in m, and the key once its Set is
// empty.
func RemoveFrom[K, T comparable](m map[K]Set[T], key K, v T) {
	s, ok := m[key]
	if !ok || !s.Remove(v) {
		return
	}
	if s.Len() == 0 {
		delete(m, key)
		return
	}
	m[key] = s
}
