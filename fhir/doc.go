// Package fhir reads FHIR R4 resources for Vigil and pins what it read.
//
// It provides:
//
//   - Client, a REST client (read, vread, paged search) with bounded retries,
//     exponential backoff with jitter, Retry-After handling and a body size limit;
//   - Store and NewHandler, an in-memory, versioned FHIR store and a read-only
//     FHIR REST server over it, for fixtures, the demo and tests;
//   - Snapshot, the trigger, its Patient and the clinical context pinned by
//     type, id, versionId and sha256, with one reproducible hash over the whole;
//   - ParseNotification, for Subscription notifications (R4 Subscriptions
//     backport, Parameters-based SubscriptionStatus);
//   - DecisionKey and PatientRefOf, small helpers the pipeline keys work on.
//
// Resources are kept as the exact bytes the server sent (Resource.Raw);
// hashing and storage always use those bytes, never a re-encoding of a typed
// model. Typed decoding (github.com/samply/golang-fhir-models) is left to the
// packages that need it.
//
// Imports: the standard library only; it imports nothing of Vigil's.
//
// PHI: everything this package handles is protected health information.
// Resource content (names, values, text) never appears in error messages or
// logs: errors name the operation, the resource type, HTTP statuses and
// positions, and wrap the sentinels ErrNotFound, ErrUnavailable and ErrInvalid.
// Resource.String prints only the type.
package fhir
