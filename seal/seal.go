package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// ErrDecrypt means a ciphertext could not be opened: wrong key, wrong
// associated data, or tampering.
var ErrDecrypt = errors.New("seal: cannot open ciphertext")

// KeyProvider wraps and unwraps data keys with a key-encryption key it never reveals.
type KeyProvider interface {
	// ID names the KEK, stored beside every wrapped DEK.
	ID() string
	Wrap(ctx context.Context, dek []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// LocalKey is a KeyProvider backed by a 32-byte key held in a local file
// (hex or base64). Suitable for development and tests; production uses a KMS.
type LocalKey struct {
	id  string
	aad []byte
	gcm cipher.AEAD
}

// LoadLocalKey reads a key file written by GenerateLocalKey.
func LoadLocalKey(path string) (*LocalKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	key, err := hex.DecodeString(s)
	if err != nil {
		key, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("seal: key file %s must hold 32 bytes as hex or base64", path)
	}
	return NewLocalKey(key)
}

// NewLocalKey builds a provider from a 32-byte key.
func NewLocalKey(key []byte) (*LocalKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: local key must be 32 bytes, got %d", len(key))
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	return &LocalKey{id: "local:" + hex.EncodeToString(sum[:6]), aad: []byte("vigil-kek-v1"), gcm: gcm}, nil
}

// GenerateLocalKey writes a fresh random key to path with mode 0600, refusing to overwrite.
func GenerateLocalKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("seal: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("seal: create key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("seal: write key file: %w", err)
	}
	return f.Close()
}

// ID implements KeyProvider.
func (k *LocalKey) ID() string { return k.id }

// Wrap implements KeyProvider.
func (k *LocalKey) Wrap(_ context.Context, dek []byte) ([]byte, error) {
	return encrypt(k.gcm, dek, k.aad)
}

// Unwrap implements KeyProvider.
func (k *LocalKey) Unwrap(_ context.Context, wrapped []byte) ([]byte, error) {
	return decrypt(k.gcm, wrapped, k.aad)
}

// Sealer encrypts per tenant. It caches unwrapped DEKs in memory; it is safe for concurrent use.
type Sealer struct {
	provider KeyProvider
	mu       sync.Mutex
	deks     map[string]cipher.AEAD // tenant + "/" + key id
}

// New returns a Sealer over provider.
func New(provider KeyProvider) (*Sealer, error) {
	if provider == nil {
		return nil, errors.New("seal: key provider required")
	}
	return &Sealer{provider: provider, deks: map[string]cipher.AEAD{}}, nil
}

// Ping checks that the key provider can wrap and unwrap (for /readyz).
func (s *Sealer) Ping(ctx context.Context) error {
	probe := []byte("vigil-readyz-probe-key-material!")
	w, err := s.provider.Wrap(ctx, probe)
	if err != nil {
		return fmt.Errorf("seal: key provider wrap: %w", err)
	}
	if _, err := s.provider.Unwrap(ctx, w); err != nil {
		return fmt.Errorf("seal: key provider unwrap: %w", err)
	}
	return nil
}

// Seal encrypts plaintext for tenantID inside tx (which must be scoped to that
// tenant), creating the tenant's first data key if needed. purpose is bound as
// associated data, so a ciphertext cannot be replayed in another field.
func (s *Sealer) Seal(ctx context.Context, tx pgx.Tx, tenantID, purpose string, plaintext []byte) (ciphertext []byte, keyID string, err error) {
	keyID, gcm, err := s.activeKey(ctx, tx, tenantID)
	if err != nil {
		return nil, "", err
	}
	ct, err := encrypt(gcm, plaintext, aad(tenantID, keyID, purpose))
	if err != nil {
		return nil, "", err
	}
	return ct, keyID, nil
}

// Open decrypts what Seal produced.
func (s *Sealer) Open(ctx context.Context, tx pgx.Tx, tenantID, purpose, keyID string, ciphertext []byte) ([]byte, error) {
	gcm, err := s.key(ctx, tx, tenantID, keyID)
	if err != nil {
		return nil, err
	}
	return decrypt(gcm, ciphertext, aad(tenantID, keyID, purpose))
}

// Rotate makes a new data key the tenant's active one; old keys stay readable.
func (s *Sealer) Rotate(ctx context.Context, tx pgx.Tx, tenantID string) (string, error) {
	if _, err := tx.Exec(ctx, `UPDATE tenant_keys SET active = false WHERE tenant_id = $1 AND active`, tenantID); err != nil {
		return "", fmt.Errorf("seal: rotate: %w", err)
	}
	id, _, err := s.createKey(ctx, tx, tenantID)
	return id, err
}

// Rewrap re-wraps every data key of the tenant under a new KEK (KEK rotation)
// without touching any ciphertext.
func (s *Sealer) Rewrap(ctx context.Context, tx pgx.Tx, tenantID string, to KeyProvider) (int, error) {
	rows, err := tx.Query(ctx, `SELECT key_id, wrapped FROM tenant_keys WHERE tenant_id = $1 AND kek_id = $2`, tenantID, s.provider.ID())
	if err != nil {
		return 0, fmt.Errorf("seal: rewrap: %w", err)
	}
	type kw struct {
		id      string
		wrapped []byte
	}
	var keys []kw
	for rows.Next() {
		var k kw
		if err := rows.Scan(&k.id, &k.wrapped); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal: rewrap: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	for _, k := range keys {
		dek, err := s.provider.Unwrap(ctx, k.wrapped)
		if err != nil {
			return 0, fmt.Errorf("seal: rewrap unwrap %s: %w", k.id, err)
		}
		w, err := to.Wrap(ctx, dek)
		if err != nil {
			return 0, fmt.Errorf("seal: rewrap wrap %s: %w", k.id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE tenant_keys SET wrapped = $3, kek_id = $4 WHERE tenant_id = $1 AND key_id = $2`, tenantID, k.id, w, to.ID()); err != nil {
			return 0, fmt.Errorf("seal: rewrap store %s: %w", k.id, err)
		}
	}
	return len(keys), nil
}

func (s *Sealer) activeKey(ctx context.Context, tx pgx.Tx, tenantID string) (string, cipher.AEAD, error) {
	var keyID, kekID string
	var wrapped []byte
	err := tx.QueryRow(ctx, `SELECT key_id, kek_id, wrapped FROM tenant_keys WHERE tenant_id = $1 AND active`, tenantID).Scan(&keyID, &kekID, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.createKey(ctx, tx, tenantID)
	}
	if err != nil {
		return "", nil, fmt.Errorf("seal: load active key: %w", err)
	}
	gcm, err := s.cached(ctx, tenantID, keyID, kekID, wrapped)
	return keyID, gcm, err
}

func (s *Sealer) key(ctx context.Context, tx pgx.Tx, tenantID, keyID string) (cipher.AEAD, error) {
	s.mu.Lock()
	gcm, ok := s.deks[tenantID+"/"+keyID]
	s.mu.Unlock()
	if ok {
		return gcm, nil
	}
	var kekID string
	var wrapped []byte
	if err := tx.QueryRow(ctx, `SELECT kek_id, wrapped FROM tenant_keys WHERE tenant_id = $1 AND key_id = $2`, tenantID, keyID).Scan(&kekID, &wrapped); err != nil {
		return nil, fmt.Errorf("seal: load key %s: %w", keyID, err)
	}
	return s.cached(ctx, tenantID, keyID, kekID, wrapped)
}

func (s *Sealer) cached(ctx context.Context, tenantID, keyID, kekID string, wrapped []byte) (cipher.AEAD, error) {
	s.mu.Lock()
	gcm, ok := s.deks[tenantID+"/"+keyID]
	s.mu.Unlock()
	if ok {
		return gcm, nil
	}
	if kekID != s.provider.ID() {
		return nil, fmt.Errorf("seal: key %s is wrapped by KEK %s, provider holds %s", keyID, kekID, s.provider.ID())
	}
	dek, err := s.provider.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("seal: unwrap key %s: %w", keyID, err)
	}
	gcm, err = newGCM(dek)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.deks[tenantID+"/"+keyID] = gcm
	s.mu.Unlock()
	return gcm, nil
}

func (s *Sealer) createKey(ctx context.Context, tx pgx.Tx, tenantID string) (string, cipher.AEAD, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return "", nil, fmt.Errorf("seal: generate key: %w", err)
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return "", nil, fmt.Errorf("seal: generate key id: %w", err)
	}
	keyID := "dek-" + hex.EncodeToString(idb)
	wrapped, err := s.provider.Wrap(ctx, dek)
	if err != nil {
		return "", nil, fmt.Errorf("seal: wrap new key: %w", err)
	}
	// ON CONFLICT: a concurrent transaction created the active key first; use theirs.
	tag, err := tx.Exec(ctx, `INSERT INTO tenant_keys (tenant_id, key_id, kek_id, wrapped, active) VALUES ($1, $2, $3, $4, true)
		ON CONFLICT (tenant_id) WHERE active DO NOTHING`, tenantID, keyID, s.provider.ID(), wrapped)
	if err != nil {
		return "", nil, fmt.Errorf("seal: store new key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var kekID string
		if err := tx.QueryRow(ctx, `SELECT key_id, kek_id, wrapped FROM tenant_keys WHERE tenant_id = $1 AND active`, tenantID).Scan(&keyID, &kekID, &wrapped); err != nil {
			return "", nil, fmt.Errorf("seal: load active key: %w", err)
		}
		gcm, err := s.cached(ctx, tenantID, keyID, kekID, wrapped)
		return keyID, gcm, err
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	s.deks[tenantID+"/"+keyID] = gcm
	s.mu.Unlock()
	return keyID, gcm, nil
}

func aad(tenantID, keyID, purpose string) []byte {
	return []byte("vigil-seal-v1\x00" + tenantID + "\x00" + keyID + "\x00" + purpose)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: gcm: %w", err)
	}
	return gcm, nil
}

const formatV1 = 1

func encrypt(gcm cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+gcm.Overhead())
	out = append(out, formatV1)
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plaintext, ad), nil
}

func decrypt(gcm cipher.AEAD, ct, ad []byte) ([]byte, error) {
	n := gcm.NonceSize()
	if len(ct) < 1+n+gcm.Overhead() || ct[0] != formatV1 {
		return nil, ErrDecrypt
	}
	pt, err := gcm.Open(nil, ct[1:1+n], ct[1+n:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
