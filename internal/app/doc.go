// Package app wires Vigil's parts into one running process: the tenant-scoped
// store, the key provider and sealer, the rule pack, River workers with the
// triage pipeline, and the HTTP API with authentication bound to the tenant
// registry. cmd/vigil (serve, demo) and the end-to-end tests use it, so what
// the tests prove is what the binary runs.
package app
