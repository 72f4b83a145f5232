package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// bundleEntries is the part of a Bundle LoadBundle reads.
type bundleEntries struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

// LoadBundle stores every resource of a transaction, batch, collection or
// searchset Bundle and returns how many it stored. Resource ids are kept; a
// resource without an id takes the uuid of its urn:uuid fullUrl. Every JSON
// string equal to an entry's urn:uuid fullUrl (in practice,
// Reference.reference, as Synthea writes them) is rewritten to "Type/id".
// Entries without a resource (e.g. DELETE requests) are skipped. The bundle is
// checked completely before anything is stored.
func (s *Store) LoadBundle(b []byte) (int, error) {
	if !isJSONObject(b) {
		return 0, fmt.Errorf("fhir: load bundle: not a JSON object: %w", ErrInvalid)
	}
	var bundle bundleEntries
	if err := json.Unmarshal(b, &bundle); err != nil {
		return 0, fmt.Errorf("fhir: load bundle: %s: %w", jsonErrorDetail(err), ErrInvalid)
	}
	if bundle.ResourceType != "Bundle" {
		return 0, fmt.Errorf("fhir: load bundle: resourceType is not Bundle: %w", ErrInvalid)
	}
	switch bundle.Type {
	case "transaction", "batch", "collection", "searchset":
	default:
		return 0, fmt.Errorf("fhir: load bundle: bundle type %s is not transaction, batch, collection or searchset: %w", quoteCode(bundle.Type), ErrInvalid)
	}
	urns := map[string]string{}
	raws := make([][]byte, 0, len(bundle.Entry))
	for i, e := range bundle.Entry {
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			continue
		}
		h, err := parseHeader(e.Resource)
		if err != nil {
			return 0, fmt.Errorf("fhir: load bundle: entry %d: %w", i, err)
		}
		raw := []byte(e.Resource)
		uuid, isURN := strings.CutPrefix(e.FullURL, "urn:uuid:")
		if h.ID == "" {
			if !isURN || !validID(uuid) {
				return 0, fmt.Errorf("fhir: load bundle: entry %d: %s has no id and no urn:uuid fullUrl: %w", i, h.ResourceType, ErrInvalid)
			}
			h.ID = uuid
			ms, err := objectMembers(raw)
			if err != nil {
				return 0, fmt.Errorf("fhir: load bundle: entry %d: %w", i, err)
			}
			idj, _ := marshalNoEscape(uuid)
			if raw, err = encodeMembers(setMember(ms, "id", idj, "resourceType")); err != nil {
				return 0, fmt.Errorf("fhir: load bundle: entry %d: %w", i, err)
			}
		}
		if isURN {
			urns[e.FullURL] = h.ResourceType + "/" + h.ID
		}
		raws = append(raws, raw)
	}
	n := 0
	for i, raw := range raws {
		if _, err := s.Put(rewriteStrings(raw, urns)); err != nil {
			return n, fmt.Errorf("fhir: load bundle: resource %d: %w", i, err)
		}
		n++
	}
	return n, nil
}

// LoadFS loads every *.json file in dir (not recursive, in name order): a
// Bundle through LoadBundle, any other resource through Put. It returns the
// number of resources stored. Errors give the file's position, not its name
// (Synthea file names are patient names).
func (s *Store) LoadFS(fsys fs.FS, dir string) (int, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return 0, fmt.Errorf("fhir: load directory: %w", err)
	}
	total, fileNo := 0, 0
	for _, de := range entries {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		fileNo++
		b, err := fs.ReadFile(fsys, path.Join(dir, de.Name()))
		if err != nil {
			return total, fmt.Errorf("fhir: load directory: json file %d: read failed: %w", fileNo, stripPath(err))
		}
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if !isJSONObject(b) || json.Unmarshal(b, &head) != nil {
			return total, fmt.Errorf("fhir: load directory: json file %d: not a JSON object: %w", fileNo, ErrInvalid)
		}
		if head.ResourceType == "Bundle" {
			n, err := s.LoadBundle(b)
			total += n
			if err != nil {
				return total, fmt.Errorf("fhir: load directory: json file %d: %w", fileNo, err)
			}
			continue
		}
		if _, err := s.Put(b); err != nil {
			return total, fmt.Errorf("fhir: load directory: json file %d: %w", fileNo, err)
		}
		total++
	}
	return total, nil
}

// stripPath drops the file name from an fs.PathError.
func stripPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// rewriteStrings replaces every JSON string (in valid JSON) whose unescaped
// content is a key of m by m's value (which must need no escaping).
func rewriteStrings(raw []byte, m map[string]string) []byte {
	if len(m) == 0 || !bytes.Contains(raw, []byte("urn:uuid:")) {
		return raw
	}
	var out []byte
	last := 0
	for i := 0; i < len(raw); {
		if raw[i] != '"' {
			i++
			continue
		}
		j, escaped := i+1, false
		for j < len(raw) && raw[j] != '"' {
			if raw[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j > len(raw) {
			j = len(raw)
		}
		if !escaped {
			if repl, ok := m[string(raw[i+1:j])]; ok {
				out = append(out, raw[last:i+1]...)
				out = append(out, repl...)
				last = j
			}
		}
		i = j + 1
	}
	if out == nil {
		return raw
	}
	return append(out, raw[last:]...)
}

// quoteCode quotes s when it looks like a FHIR code; anything else (which
// could be content) is replaced by a neutral description.
func quoteCode(s string) string {
	if s == "" {
		return "(missing)"
	}
	if len(s) > 40 {
		return "(not a code)"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "(not a code)"
		}
	}
	return `"` + s + `"`
}
