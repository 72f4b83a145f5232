// Package llmtest provides an OpenAI-compatible chat completions server for
// tests (net/http/httptest), so that drafters are exercised through the real
// go-openai client and the real HTTP stack.
//
// A Server answers POST …/chat/completions with whatever its Handler
// returns: a well-formed answer (Answer), a hallucinating or faithful
// scripted draft built from the request (Faithful, Hallucinate), a slow or
// hanging answer (Slow, Hang), an HTTP error with an optional Retry-After
// (Status), or garbage (Garbage). It records every raw request body it
// received, so tests can assert on the exact bytes a model would have seen.
//
// Imports: the standard library and go-openai; nothing of Vigil's. Test use
// only: never import it from production code.
//
// PHI: request bodies recorded here are what a model would receive. Tests
// may inspect them but must not log them (use t.Log only for sizes and
// counts).
package llmtest
