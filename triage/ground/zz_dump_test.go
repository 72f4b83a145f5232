package ground_test

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestZZDump(t *testing.T) {
	snaps := snapshots(t)
	for _, p := range corpusPatients() {
		s := snaps[p.Key]
		fmt.Printf("=== %s patient %s\n", p.Key, s.Patient.Ref())
		var pt map[string]any
		json.Unmarshal(s.Patient.Raw, &pt)
		fmt.Printf("  birth %v gender %v\n", pt["birthDate"], pt["gender"])
		fmt.Printf("  trigger %s\n", s.Trigger.Ref())
		for _, r := range s.Context {
			var m map[string]any
			json.Unmarshal(r.Raw, &m)
			line := r.Ref().String()
			get := func(k string) any { return m[k] }
			if c, ok := get("code").(map[string]any); ok {
				line += fmt.Sprintf(" code=%q", c["text"])
			}
			if c, ok := get("medicationCodeableConcept").(map[string]any); ok {
				line += fmt.Sprintf(" med=%q", c["text"])
			}
			for _, k := range []string{"effectiveDateTime", "authoredOn", "onsetDateTime", "recordedDate", "status", "clinicalStatus", "abatementDateTime"} {
				if v, ok := m[k]; ok {
					b, _ := json.Marshal(v)
					if len(b) > 80 { b = b[:80] }
					line += fmt.Sprintf(" %s=%s", k, b)
				}
			}
			if v, ok := m["valueQuantity"]; ok {
				b, _ := json.Marshal(v)
				line += " vq=" + string(b)
			}
			if v, ok := m["component"]; ok {
				for _, c := range v.([]any) {
					cm := c.(map[string]any)
					b, _ := json.Marshal(cm["valueQuantity"])
					line += fmt.Sprintf(" comp[%v]=%s", cm["code"].(map[string]any)["text"], b)
				}
			}
			if v, ok := m["referenceRange"]; ok {
				b, _ := json.Marshal(v)
				line += " rr=" + string(b)
			}
			if v, ok := m["dosageInstruction"]; ok {
				b, _ := json.Marshal(v)
				if len(b) > 200 { b = b[:200] }
				line += " dose=" + string(b)
			}
			fmt.Println("  " + line)
		}
	}
}
