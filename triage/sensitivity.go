package triage

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/vigil-health/vigil/fhir"
)

// Sensitivity labels, as the access policy names them.
const (
	LabelBehavioralHealth  = "behavioral_health"
	LabelSubstanceUsePart2 = "substance_use_part2"
	LabelHIV               = "hiv"
	LabelMinor             = "minor"
)

// securityLabels maps HL7 v3 confidentiality / ActCode sensitivity codes
// found in meta.security to the access labels.
var securityLabels = map[string]string{
	"ETH": LabelSubstanceUsePart2, "SUD": LabelSubstanceUsePart2, "42CFRPART2": LabelSubstanceUsePart2, "SUBSTANCE": LabelSubstanceUsePart2,
	"PSY": LabelBehavioralHealth, "PSYTHPN": LabelBehavioralHealth, "BH": LabelBehavioralHealth, "MH": LabelBehavioralHealth,
	"HIV": LabelHIV,
}

// SensitivityLabels returns the access labels of an item: the trigger's and
// the patient's meta.security codes, and "minor" under 18.
func SensitivityLabels(trig, patient *fhir.Resource, ageYears *float64) []string {
	var out []string
	for _, r := range []*fhir.Resource{trig, patient} {
		if r == nil {
			continue
		}
		var m struct {
			Meta struct {
				Security []struct {
					Code string `json:"code"`
				} `json:"security"`
			} `json:"meta"`
		}
		if json.Unmarshal(r.Raw, &m) != nil {
			continue
		}
		for _, s := range m.Meta.Security {
			if l, ok := securityLabels[strings.ToUpper(s.Code)]; ok {
				out = append(out, l)
			}
		}
	}
	if ageYears != nil && *ageYears < 18 {
		out = append(out, LabelMinor)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
