package fhir

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Handler limits for search paging.
const (
	// DefaultPageSize is the handler's _count when the request gives none.
	DefaultPageSize = 50
	// MaxPageSize is the largest _count the handler honours.
	MaxPageSize = 1000
	// PageOffsetParam is the query parameter of the handler's next links.
	PageOffsetParam = "_getpagesoffset"
)

// NewHandler returns a read-only FHIR R4 REST server (JSON) over s:
//
//	GET /metadata                         a minimal CapabilityStatement
//	GET /{type}/{id}                      read (ETag W/"version")
//	GET /{type}/{id}/_history/{version}   vread
//	GET /{type}?params                    search: a searchset Bundle of Store.Search's
//	                                      results, paged by _count (default 50, at most
//	                                      1000) with self and next links (next carries
//	                                      _getpagesoffset)
//
// Unknown resources answer 404 and bad requests 400, each with an
// OperationOutcome; other methods answer 405. It may be mounted under a path
// prefix with http.StripPrefix: links keep the prefix.
func NewHandler(s *Store) http.Handler { return &handler{store: s} }

type handler struct{ store *Store }

// ServeHTTP routes GET requests to read, vread, search or metadata.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeOutcome(w, http.StatusMethodNotAllowed, "not-supported", "only GET is supported")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "metadata":
		writeJSON(w, http.StatusOK, []byte(`{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server"}]}`))
	case len(parts) == 1 && validType(parts[0]):
		h.search(w, r, parts[0])
	case len(parts) == 2 && validType(parts[0]):
		res, err := h.store.Read(r.Context(), parts[0], parts[1])
		h.writeResource(w, res, err)
	case len(parts) == 4 && validType(parts[0]) && parts[2] == "_history":
		res, err := h.store.VRead(r.Context(), parts[0], parts[1], parts[3])
		h.writeResource(w, res, err)
	default:
		writeOutcome(w, http.StatusNotFound, "not-found", "unknown path")
	}
}

func (h *handler) writeResource(w http.ResponseWriter, res *Resource, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeOutcome(w, http.StatusNotFound, "not-found", "resource not found")
	case err != nil:
		writeOutcome(w, http.StatusInternalServerError, "exception", "read failed")
	default:
		if res.VersionID != "" {
			w.Header().Set("ETag", `W/"`+res.VersionID+`"`)
		}
		if res.LastUpdated != "" {
			w.Header().Set("X-Last-Updated", res.LastUpdated)
		}
		writeJSON(w, http.StatusOK, res.Raw)
	}
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

type searchsetOut struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Link         []bundleLink  `json:"link"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

func (h *handler) search(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	count, offset := DefaultPageSize, 0
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_count must be a non-negative integer")
			return
		}
		count = min(n, MaxPageSize)
	}
	if v := q.Get(PageOffsetParam); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeOutcome(w, http.StatusBadRequest, "invalid", PageOffsetParam+" must be a non-negative integer")
			return
		}
		offset = n
	}
	all := h.store.search(typ, q)
	base := baseURL(r)
	out := searchsetOut{ResourceType: "Bundle", Type: "searchset", Total: len(all)}
	out.Link = append(out.Link, bundleLink{Relation: "self", URL: base + "/" + typ + queryString(q)})
	end := min(offset+count, len(all))
	if offset < end {
		for _, res := range all[offset:end] {
			e := bundleEntry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: res.Raw}
			e.Search.Mode = "match"
			out.Entry = append(out.Entry, e)
		}
	}
	if count > 0 && end < len(all) {
		nq := cloneValues(q)
		nq.Set(PageOffsetParam, strconv.Itoa(end))
		nq.Set("_count", strconv.Itoa(count))
		out.Link = append(out.Link, bundleLink{Relation: "next", URL: base + "/" + typ + queryString(nq)})
	}
	b, err := marshalNoEscape(out)
	if err != nil {
		writeOutcome(w, http.StatusInternalServerError, "exception", "encoding failed")
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// baseURL is scheme://host plus any prefix stripped before the handler ran.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		p, rest := u.EscapedPath(), r.URL.EscapedPath()
		if strings.HasSuffix(p, rest) {
			prefix = strings.TrimSuffix(p, rest)
		}
	}
	return scheme + "://" + r.Host + strings.TrimSuffix(prefix, "/")
}

func queryString(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", mimeFHIRJSON+"; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeOutcome answers with an OperationOutcome; diagnostics are fixed texts.
func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	type issue struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
	}
	b, _ := marshalNoEscape(struct {
		ResourceType string  `json:"resourceType"`
		Issue        []issue `json:"issue"`
	}{"OperationOutcome", []issue{{"error", code, diagnostics}}})
	writeJSON(w, status, b)
}
