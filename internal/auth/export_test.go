package auth

import "time"

// SetClock makes v (its parser and its token cache) read the time from now.
func SetClock(v *Verifier, now func() time.Time) { v.now = now }

// CachedThreads is how many threadTokens v remembers.
func CachedThreads(v *Verifier) int {
	if v.threads == nil {
		return 0
	}
	return v.threads.c.Len()
}
