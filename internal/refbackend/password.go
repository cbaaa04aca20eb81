package refbackend

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// DefaultPasswordIterations is the PBKDF2-HMAC-SHA256 work factor for new
// password hashes, OWASP's 2023 recommendation.
const DefaultPasswordIterations = 600_000

const (
	saltBytes = 16
	hashBytes = 32
)

// passwordHash is what the users table keeps. The iteration count is stored
// per user so that raising it later does not lock out existing users.
type passwordHash struct {
	Hash, Salt []byte
	Iter       int
}

func hashPassword(password string, iter int) (passwordHash, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return passwordHash{}, fmt.Errorf("password salt: %w", err)
	}
	h, err := pbkdf2.Key(sha256.New, password, salt, iter, hashBytes)
	if err != nil {
		return passwordHash{}, fmt.Errorf("hash password: %w", err)
	}
	return passwordHash{Hash: h, Salt: salt, Iter: iter}, nil
}

// matches reports whether password hashes to p, comparing in constant time.
func (p passwordHash) matches(password string) bool {
	h, err := pbkdf2.Key(sha256.New, password, p.Salt, p.Iter, len(p.Hash))
	return err == nil && subtle.ConstantTimeCompare(h, p.Hash) == 1
}
