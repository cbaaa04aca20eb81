// Package smallset owns Set, a set of comparable values for the many
// per-connection and per-user sets that hold one or a few members (a
// connection's threads, a user's connections): a slice while it is small,
// a map once it is large, so that the common case costs a few words and
// not a map's header and first group (issue 14, idle memory).
//
// A Set is not safe for concurrent use; its owner's lock guards it. A Set
// is a value: one stored in a map is read, changed and stored back.
package smallset

import "iter"

// spill is the size above which a Set moves its members into a map:
// below it a linear scan of a slice is as fast as hashing.
const spill = 16

// Set is a set of T. The zero Set is empty and ready to use.
type Set[T comparable] struct {
	few  []T            // the members while len ≤ spill; nil once spilled
	many map[T]struct{} // the members once spilled
}

// Len returns the number of members.
func (s *Set[T]) Len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// Has reports whether v is a member.
func (s *Set[T]) Has(v T) bool {
	if s.many != nil {
		_, ok := s.many[v]
		return ok
	}
	for _, x := range s.few {
		if x == v {
			return true
		}
	}
	return false
}

// Add makes v a member and reports whether it was not one before.
func (s *Set[T]) Add(v T) bool {
	if s.many != nil {
		if _, ok := s.many[v]; ok {
			return false
		}
		s.many[v] = struct{}{}
		return true
	}
	if s.Has(v) {
		return false
	}
	if len(s.few) < spill {
		s.few = append(s.few, v)
		return true
	}
	s.many = make(map[T]struct{}, 2*spill)
	for _, x := range s.few {
		s.many[x] = struct{}{}
	}
	s.many[v] = struct{}{}
	s.few = nil
	return true
}

// Remove drops v and reports whether it was a member. A spilled Set stays
// a map until it is empty: a set that grew large once tends to again.
func (s *Set[T]) Remove(v T) bool {
	if s.many != nil {
		if _, ok := s.many[v]; !ok {
			return false
		}
		delete(s.many, v)
		if len(s.many) == 0 {
			s.many = nil
		}
		return true
	}
	for i, x := range s.few {
		if x == v {
			last := len(s.few) - 1
			s.few[i] = s.few[last]
			var zero T
			s.few[last] = zero // let the removed value be collected
			s.few = s.few[:last]
			if last == 0 {
				s.few = nil
			}
			return true
		}
	}
	return false
}

// All yields every member once, in no particular order. The Set must not
// change while All runs.
func (s *Set[T]) All() iter.Seq[T] {
	return func(yield func(T) bool) {
		if s.many != nil {
			for v := range s.many {
				if !yield(v) {
					return
				}
			}
			return
		}
		for _, v := range s.few {
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
