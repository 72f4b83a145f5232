package ground

import (
	"runtime"
	"sync"
	"weak"

	"github.com/vigil-health/vigil/fhir"
)

// factCache keeps the extracted facts of each resource for as long as the
// resource itself is alive, so that verifying several drafts against the
// same snapshot (or snapshots sharing resources) decodes each resource's
// JSON once. Entries are keyed by a weak pointer and removed when the
// resource is collected: the cache never keeps PHI alive longer than the
// caller does. Resources are treated as immutable; an entry is used only
// while the resource's SHA256 and length are those it was built from.
type factCache struct {
	mu sync.Mutex
	m  map[weak.Pointer[fhir.Resource]]cachedFacts
}

type cachedFacts struct {
	sha string
	n   int
	f   *resourceFacts
}

func newFactCache() *factCache {
	return &factCache{m: map[weak.Pointer[fhir.Resource]]cachedFacts{}}
}

// facts returns the (shared, read-only) facts of r.
func (v *Verifier) facts(r *fhir.Resource) *resourceFacts {
	c := v.cache
	if c == nil || r.SHA256 == "" {
		return v.indexResource(r)
	}
	k := weak.Make(r)
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && e.sha == r.SHA256 && e.n == len(r.Raw) {
		return e.f
	}
	f := v.indexResource(r)
	c.mu.Lock()
	if _, had := c.m[k]; !had {
		runtime.AddCleanup(r, c.remove, k)
	}
	c.m[k] = cachedFacts{sha: r.SHA256, n: len(r.Raw), f: f}
	c.mu.Unlock()
	return f
}

func (c *factCache) remove(k weak.Pointer[fhir.Resource]) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
