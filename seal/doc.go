// Package seal encrypts the PHI Vigil must keep (LLM requests and responses,
// reply drafts, message and snapshot copies) with AES-256-GCM envelope
// encryption: each tenant has data keys (DEKs) stored wrapped by a
// key-encryption key (KEK) from a KeyProvider. The key id is stored beside
// every ciphertext, so keys can rotate without re-encrypting old data.
//
// The provider here is a local key file (development and single-host
// deployments); a cloud KMS provider implements the same interface and is not
// built yet. seal owns the tenant_keys table. Plaintext never appears in
// errors or logs.
package seal
