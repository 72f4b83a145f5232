package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/store"
)

// Checkpoint is a signed statement that a tenant's chain had Seq records
// ending in Hash at SignedAt. Exported checkpoints (outside the database)
// are what catch a superuser who rewrites the whole chain.
type Checkpoint struct {
	ID        string    `json:"id,omitempty"`
	TenantID  string    `json:"tenant_id"`
	Seq       int64     `json:"seq"`
	Hash      HexBytes  `json:"hash"`
	SignedAt  time.Time `json:"signed_at"`
	KeyID     string    `json:"key_id"`
	Signature HexBytes  `json:"signature"`
}

// HexBytes marshals to JSON as a lowercase hex string.
type HexBytes []byte

// MarshalJSON implements json.Marshaler.
func (h HexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON implements json.Unmarshaler.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// String returns the hex form.
func (h HexBytes) String() string { return hex.EncodeToString(h) }

// SignedMessage is the byte string a checkpoint's signature covers (version 1):
//
//	"vigil.audit.checkpoint.v1\n" tenant "\n" seq "\n" hex(hash) "\n" signed_at "\n"
//
// with seq in decimal and signed_at as RFC 3339 in UTC with microseconds.
func (c *Checkpoint) SignedMessage() []byte {
	var b bytes.Buffer
	b.WriteString("vigil.audit.checkpoint.v1\n")
	b.WriteString(c.TenantID)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(c.Seq, 10))
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(c.Hash))
	b.WriteByte('\n')
	b.WriteString(c.SignedAt.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte('\n')
	return b.Bytes()
}

// KeyID names a public key: the first 8 bytes of its sha256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Sign fills KeyID and Signature.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.SignedAt = c.SignedAt.UTC().Truncate(time.Microsecond)
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = ed25519.Sign(key, c.SignedMessage())
}

// VerifySignature reports whether pub signed c.
func (c *Checkpoint) VerifySignature(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, c.SignedMessage(), c.Signature)
}

// WriteCheckpoint signs and stores a checkpoint of every tenant's chain head
// whose head moved since its last checkpoint. pool may be the app role's or
// the owner's. It is what the periodic checkpoint job runs.
func WriteCheckpoint(ctx context.Context, pool *pgxpool.Pool, signer ed25519.PrivateKey, now time.Time) ([]Checkpoint, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: checkpoint: no ed25519 signing key")
	}
	tenants, err := listTenants(ctx, pool)
	if err != nil {
		return nil, err
	}
	var out []Checkpoint
	for _, t := range tenants {
		cp, err := writeTenantCheckpoint(ctx, pool, t, signer, now)
		if err != nil {
			return out, err
		}
		if cp != nil {
			out = append(out, *cp)
		}
	}
	return out, nil
}

func writeTenantCheckpoint(ctx context.Context, pool *pgxpool.Pool, tenant string, signer ed25519.PrivateKey, now time.Time) (*Checkpoint, error) {
	var cp *Checkpoint
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := store.SetTenant(ctx, tx, tenant); err != nil {
			return err
		}
		c := Checkpoint{TenantID: tenant, SignedAt: now}
		// FOR SHARE: no append moves the head while we read it.
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR SHARE`, tenant).Scan(&c.Seq, (*[]byte)(&c.Hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // nothing audited yet
		}
		if err != nil {
			return err
		}
		var last int64 = -1
		err = tx.QueryRow(ctx, `SELECT coalesce(max(seq), -1) FROM audit_checkpoints WHERE tenant_id = $1 AND key_id = $2`,
			tenant, KeyID(signer.Public().(ed25519.PublicKey))).Scan(&last)
		if err != nil {
			return err
		}
		if last == c.Seq {
			return nil
		}
		c.Sign(signer)
		if err := tx.QueryRow(ctx, `INSERT INTO audit_checkpoints (tenant_id, seq, hash, signed_at, key_id, signature)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::text`,
			c.TenantID, c.Seq, []byte(c.Hash), c.SignedAt, c.KeyID, []byte(c.Signature)).Scan(&c.ID); err != nil {
			return err
		}
		cp = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint tenant %s: %w", tenant, err)
	}
	return cp, nil
}

// ListCheckpoints returns the stored checkpoints of one tenant (in tx, scoped
// to it), oldest first.
func ListCheckpoints(ctx context.Context, tx pgx.Tx, tenant string) ([]Checkpoint, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, tenant_id, seq, hash, signed_at, key_id, signature
		FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq, signed_at`, tenant)
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		err := r.Scan(&c.ID, &c.TenantID, &c.Seq, (*[]byte)(&c.Hash), &c.SignedAt, &c.KeyID, (*[]byte)(&c.Signature))
		c.SignedAt = c.SignedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	return out, nil
}

// MarkExported records that checkpoints were copied out of the database to
// destination (retention drops only what an exported checkpoint covers).
func MarkExported(ctx context.Context, pool *pgxpool.Pool, cps []Checkpoint, destination string, now time.Time) error {
	for _, c := range cps {
		err := store.New(pool).InTenant(ctx, c.TenantID, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO audit_checkpoint_exports (tenant_id, checkpoint_id, exported_at, destination)
				VALUES ($1, $2::uuid, $3, $4)`, c.TenantID, c.ID, now, destination)
			return err
		})
		if err != nil {
			return fmt.Errorf("audit: mark checkpoint exported: %w", err)
		}
	}
	return nil
}

// WriteCheckpoints writes checkpoints as JSON lines.
func WriteCheckpoints(w io.Writer, cps []Checkpoint) error {
	enc := json.NewEncoder(w)
	for i := range cps {
		if err := enc.Encode(&cps[i]); err != nil {
			return fmt.Errorf("audit: write checkpoints: %w", err)
		}
	}
	return nil
}

// ReadCheckpoints reads JSON-lines checkpoints (as WriteCheckpoints writes them).
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	dec := json.NewDecoder(r)
	var out []Checkpoint
	for {
		var c Checkpoint
		err := dec.Decode(&c)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: read checkpoints: %w", err)
		}
		out = append(out, c)
	}
}

func listTenants(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT id FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("audit: list tenants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: list tenants: %w", err)
	}
	return ids, nil
}
