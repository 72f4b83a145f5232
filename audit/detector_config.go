package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// detectorFile is the JSON form of DetectorConfig, so a privacy office can
// tune detectors without a developer:
//
//	{"window": "1h", "baseline": "336h", "off_hours_start": 20, "off_hours_end": 7,
//	 "time_zone": "America/Chicago", "thresholds": {"volume_factor": 4},
//	 "rules": [{"id": "volume_spike", "severity": "medium",
//	            "when": "count >= T.volume_min && count > baseline * T.volume_factor", "value": "count"}]}
//
// Omitted fields keep their defaults; "rules", when given, replaces the default rules.
type detectorFile struct {
	Window        string             `json:"window"`
	Baseline      string             `json:"baseline"`
	OffHoursStart *int               `json:"off_hours_start"`
	OffHoursEnd   *int               `json:"off_hours_end"`
	TimeZone      string             `json:"time_zone"`
	Thresholds    map[string]float64 `json:"thresholds"`
	Rules         []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		When     string `json:"when"`
		Value    string `json:"value"`
	} `json:"rules"`
}

// LoadDetectorConfig reads a detector configuration (see detectorFile) and
// compiles it, so a bad rule or value is refused whole with an error naming it.
func LoadDetectorConfig(r io.Reader) (DetectorConfig, error) {
	var f detectorFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return DetectorConfig{}, fmt.Errorf("audit: detector config: %w", err)
	}
	var c DetectorConfig
	for name, p := range map[string]struct {
		s   string
		dst *time.Duration
	}{"window": {f.Window, &c.Window}, "baseline": {f.Baseline, &c.Baseline}} {
		if p.s == "" {
			continue
		}
		d, err := time.ParseDuration(p.s)
		if err != nil || d <= 0 {
			return DetectorConfig{}, fmt.Errorf("audit: detector config: %s %q: want a positive duration such as 1h", name, p.s)
		}
		*p.dst = d
	}
	if f.OffHoursStart != nil || f.OffHoursEnd != nil {
		if f.OffHoursStart == nil || f.OffHoursEnd == nil {
			return DetectorConfig{}, fmt.Errorf("audit: detector config: off_hours_start and off_hours_end go together")
		}
		for _, h := range []int{*f.OffHoursStart, *f.OffHoursEnd} {
			if h < 0 || h > 23 {
				return DetectorConfig{}, fmt.Errorf("audit: detector config: off hours must be 0..23, got %d", h)
			}
		}
		c.OffHoursStart, c.OffHoursEnd = *f.OffHoursStart, *f.OffHoursEnd
	}
	if f.TimeZone != "" {
		if _, err := time.LoadLocation(f.TimeZone); err != nil {
			return DetectorConfig{}, fmt.Errorf("audit: detector config: time_zone %q: %w", f.TimeZone, err)
		}
		c.TimeZone = f.TimeZone
	}
	c.Thresholds = f.Thresholds
	for i, r := range f.Rules {
		sev := strings.ToLower(r.Severity)
		if r.ID == "" || r.When == "" || (sev != "low" && sev != "medium" && sev != "high") {
			return DetectorConfig{}, fmt.Errorf("audit: detector config: rule %d (%q) needs id, when and severity low|medium|high", i, r.ID)
		}
		c.Rules = append(c.Rules, DetectorRule{ID: r.ID, Severity: sev, When: r.When, Value: r.Value})
	}
	if _, err := NewDetectors(c); err != nil {
		return DetectorConfig{}, fmt.Errorf("audit: detector config: %w", err)
	}
	return c, nil
}
