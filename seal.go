package herald

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// sealer seals credentials into tokens and cookies: AES-256-GCM under a key derived from the
// configured password with HKDF-SHA-256, with the expiry inside the sealed payload.
type sealer struct {
	aead cipher.AEAD
}

// sealVersion prefixes every token, so the format can change.
const sealVersion = 1

var sealAD = []byte("herald nes credentials v1")

func newSealer(password string) (*sealer, error) {
	if len(password) < 32 {
		return nil, errors.New("herald: AuthOptions.Password must be at least 32 bytes for token and cookie auth")
	}
	key, err := hkdf.Key(sha256.New, []byte(password), []byte("herald/nes/seal"), "aes-256-gcm key", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

type sealed struct {
	Credentials *Credentials `json:"c"`
	Expires     int64        `json:"e"`           // Unix milliseconds
	Issued      int64        `json:"i,omitempty"` // Unix milliseconds; absent in tokens sealed before it was added
}

func (s *sealer) seal(c *Credentials, ttl time.Duration) (string, error) {
	now := time.Now()
	plain, err := json.Marshal(sealed{Credentials: c, Expires: now.Add(ttl).UnixMilli(), Issued: now.UnixMilli()})
	if err != nil {
		return "", err
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", err
	}
	out = s.aead.Seal(out, out[1:], plain, sealAD)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

var errBadSeal = errors.New("herald: invalid or expired sealed credentials")

func (s *sealer) unseal(token string) (*Credentials, error) {
	v, err := s.open(token)
	if err != nil {
		return nil, err
	}
	return v.Credentials, nil
}

// unsealIssued unseals a token and says when it was issued (RevokeUser refuses tokens issued
// before it). A token without its issue time is taken as issued ttl before it expires.
func (s *sealer) unsealIssued(token string, ttl time.Duration) (*Credentials, time.Time, error) {
	v, err := s.open(token)
	if err != nil {
		return nil, time.Time{}, err
	}
	issued := time.UnixMilli(v.Issued)
	if v.Issued == 0 {
		issued = time.UnixMilli(v.Expires).Add(-ttl)
	}
	return v.Credentials, issued, nil
}

func (s *sealer) open(token string) (*sealed, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	n := s.aead.NonceSize()
	if err != nil || len(raw) < 1+n+s.aead.Overhead() || raw[0] != sealVersion {
		return nil, errBadSeal
	}
	plain, err := s.aead.Open(nil, raw[1:1+n], raw[1+n:], sealAD)
	if err != nil {
		return nil, errBadSeal
	}
	var v sealed
	if err := json.Unmarshal(plain, &v); err != nil || v.Credentials == nil || time.Now().UnixMilli() >= v.Expires {
		return nil, errBadSeal
	}
	return &v, nil
}
