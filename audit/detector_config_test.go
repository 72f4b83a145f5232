package audit

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDetectorConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, json, wantErr string
		check               func(t *testing.T, c DetectorConfig)
	}{
		{name: "thresholds and window", json: `{"window":"30m","thresholds":{"volume_factor":3}}`, check: func(t *testing.T, c DetectorConfig) {
			c = c.WithDefaults()
			if c.Window != 30*time.Minute || c.Thresholds["volume_factor"] != 3 || c.Thresholds["volume_min"] != 50 || len(c.Rules) != 6 {
				t.Fatalf("config %+v", c)
			}
		}},
		{name: "custom rule", json: `{"rules":[{"id":"many_denials","severity":"high","when":"denied >= 2","value":"denied"}]}`, check: func(t *testing.T, c DetectorConfig) {
			if len(c.Rules) != 1 || c.Rules[0].ID != "many_denials" {
				t.Fatalf("rules %+v", c.Rules)
			}
		}},
		{name: "broken rule is refused naming it", json: `{"rules":[{"id":"bad","severity":"low","when":"count >= "}]}`, wantErr: "bad"},
		{name: "unknown field", json: `{"windw":"1h"}`, wantErr: "windw"},
		{name: "bad duration", json: `{"window":"soon"}`, wantErr: "window"},
		{name: "bad zone", json: `{"time_zone":"Mars/Olympus"}`, wantErr: "time_zone"},
		{name: "bad severity", json: `{"rules":[{"id":"x","severity":"urgent","when":"true"}]}`, wantErr: "severity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadDetectorConfig(strings.NewReader(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
