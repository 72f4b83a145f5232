package seal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

func freshKey(t *testing.T) *seal.LocalKey {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k, err := seal.NewLocalKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func setup(t *testing.T) (*testdb.DB, *seal.Sealer, *seal.LocalKey) {
	t.Helper()
	db := testdb.New(t)
	ctx := context.Background()
	for _, id := range []string{"t1", "t2"} {
		if err := store.PutTenant(ctx, db.Owner, &store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	k := freshKey(t)
	s, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return db, s, k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	db, s, k := setup(t)
	ctx := context.Background()
	secret := []byte("reply: your potassium was 6.9")
	var ct []byte
	var keyID string
	err := db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		var err error
		ct, keyID, err = s.Seal(ctx, tx, "t1", "reply_draft", secret)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, secret) || bytes.Contains(ct, []byte("6.9")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	cases := []struct {
		name    string
		tenant  string
		purpose string
		mutate  func([]byte) []byte
		sealer  func() *seal.Sealer
		wantErr bool
	}{
		{name: "round trip", tenant: "t1", purpose: "reply_draft"},
		{name: "fresh sealer unwraps the stored key", tenant: "t1", purpose: "reply_draft", sealer: func() *seal.Sealer { s2, _ := seal.New(k); return s2 }},
		{name: "other purpose", tenant: "t1", purpose: "decision_revision", wantErr: true},
		{name: "flipped bit", tenant: "t1", purpose: "reply_draft", mutate: func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 1; return c }, wantErr: true},
		{name: "truncated", tenant: "t1", purpose: "reply_draft", mutate: func(b []byte) []byte { return b[:10] }, wantErr: true},
		{name: "other tenant cannot see the key", tenant: "t2", purpose: "reply_draft", wantErr: true},
		{name: "wrong KEK", tenant: "t1", purpose: "reply_draft", sealer: func() *seal.Sealer { s2, _ := seal.New(freshKey(t)); return s2 }, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ct
			if tc.mutate != nil {
				c = tc.mutate(ct)
			}
			sl := s
			if tc.sealer != nil {
				sl = tc.sealer()
			}
			var got []byte
			err := db.App.InTenant(ctx, tc.tenant, func(tx pgx.Tx) error {
				var err error
				got, err = sl.Open(ctx, tx, tc.tenant, tc.purpose, keyID, c)
				return err
			})
			if tc.wantErr {
				if err == nil {
					t.Fatal("opened a ciphertext it must not")
				}
				return
			}
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("open: %q, %v", got, err)
			}
		})
	}
}

func TestRotateAndRewrap(t *testing.T) {
	t.Parallel()
	db, s, _ := setup(t)
	ctx := context.Background()
	var old []byte
	var oldKey string
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		var err error
		old, oldKey, err = s.Seal(ctx, tx, "t1", "p", []byte("before rotation"))
		return err
	}))
	var newKey string
	must(db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		var err error
		newKey, err = s.Rotate(ctx, tx, "t1")
		return err
	}))
	if newKey == oldKey {
		t.Fatal("rotation kept the key id")
	}
	must(db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		_, k, err := s.Seal(ctx, tx, "t1", "p", []byte("after"))
		if err == nil && k != newKey {
			t.Errorf("sealed with %s, want the rotated key %s", k, newKey)
		}
		return err
	}))
	// KEK rotation: re-wrap the data keys under a new KEK; old ciphertexts still open.
	kek2 := freshKey(t)
	must(db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		n, err := s.Rewrap(ctx, tx, "t1", kek2)
		if err == nil && n != 2 {
			t.Errorf("rewrapped %d keys, want 2", n)
		}
		return err
	}))
	s2, _ := seal.New(kek2)
	must(db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
		pt, err := s2.Open(ctx, tx, "t1", "p", oldKey, old)
		if err == nil && string(pt) != "before rotation" {
			t.Errorf("got %q", pt)
		}
		return err
	}))
}

func TestLocalKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "kek")
	if err := seal.GenerateLocalKey(p); err != nil {
		t.Fatal(err)
	}
	if err := seal.GenerateLocalKey(p); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	if _, err := seal.LoadLocalKey(p); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := seal.LoadLocalKey(bad); err == nil {
		t.Fatal("loaded a malformed key file")
	}
	if _, err := seal.New(nil); err == nil {
		t.Fatal("sealer without provider")
	}
}
