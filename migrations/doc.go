// Package migrations holds Vigil's schema as ordered, embedded SQL files and
// applies them, forward only, together with River's own migrations (in the
// schema "river"). It runs as the database owner; the application itself
// connects as the non-owner role AppRole, which these migrations grant.
//
// It imports nothing of ours and touches no PHI.
package migrations
