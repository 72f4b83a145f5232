package access

import (
	"errors"
	"testing"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // canonical form; "" = error
	}{
		{"user/Task.rs", "user/Task.rs"},
		{"patient/Observation.r", "patient/Observation.r"},
		{"system/*.cruds", "system/*.cruds"},
		{"user/Task.read", "user/Task.rs"},
		{"user/Task.write", "user/Task.cud"},
		{"user/*.*", "user/*.cruds"},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory"},
		{"user/Task.sr", ""},   // v2 letters must be in order
		{"user/Task.rr", ""},   // repeated
		{"user/Task.x", ""},    // unknown letter
		{"user/Task.", ""},     // no permissions
		{"user/task.rs", ""},   // resource type must be capitalised
		{"admin/Task.rs", ""},  // unknown context
		{"openid", ""},         // not a resource scope
		{"launch/patient", ""}, // not a resource scope
		{"user/Task.rs?", ""},  // empty query
		{"user/Ta-sk.rs", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			s, err := ParseScope(tt.in)
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrInvalidInput) {
					t.Fatalf("ParseScope(%q) = %v, %v; want ErrInvalidInput", tt.in, s, err)
				}
				return
			}
			if err != nil || s.String() != tt.want {
				t.Fatalf("ParseScope(%q) = %q, %v; want %q", tt.in, s, err, tt.want)
			}
		})
	}
}

func TestHasScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		granted  []string
		required string
		want     bool
	}{
		{"exact", []string{"user/Task.rs"}, "user/Task.rs", true},
		{"superset", []string{"user/Task.cruds"}, "user/Task.rs", true},
		{"read only lacks search", []string{"user/Task.r"}, "user/Task.rs", false},
		{"missing scope", []string{"openid", "user/Observation.rs"}, "user/Task.rs", false},
		{"no scopes", nil, "user/Task.rs", false},
		{"permissions add up", []string{"user/Task.r", "user/Task.s"}, "user/Task.rs", true},
		{"v1 read", []string{"user/Task.read"}, "user/Task.rs", true},
		{"v1 write lacks read", []string{"user/Task.write"}, "user/Task.rs", false},
		{"wildcard type", []string{"user/*.rs"}, "user/Task.rs", true},
		{"required wildcard needs granted wildcard", []string{"user/Task.rs"}, "user/*.rs", false},
		{"system does not satisfy user", []string{"system/Task.cruds"}, "user/Task.rs", false},
		{"user does not satisfy system", []string{"user/Task.cruds"}, "system/Task.c", false},
		{"patient does not satisfy user", []string{"patient/Task.rs"}, "user/Task.rs", false},
		{"system satisfies system", []string{"system/Task.c"}, "system/Task.c", true},
		{"granted query is narrower", []string{"user/Observation.rs?category=vital-signs"}, "user/Observation.rs", false},
		{"same query", []string{"user/Observation.rs?category=vital-signs"}, "user/Observation.rs?category=vital-signs", true},
		{"unqualified satisfies query", []string{"user/Observation.rs"}, "user/Observation.rs?category=vital-signs", true},
		{"garbage granted ignored", []string{"%%%", "user/Task.rs"}, "user/Task.rs", true},
		{"bad requirement", []string{"user/Task.rs"}, "Task.rs", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := HasScope(tt.granted, tt.required); got != tt.want {
				t.Fatalf("HasScope(%q, %q) = %v, want %v", tt.granted, tt.required, got, tt.want)
			}
		})
	}
}

func TestScopeError(t *testing.T) {
	t.Parallel()
	err := NewScopeError("user/Task.rs")
	var se *ScopeError
	if !errors.Is(err, ErrInsufficientScope) || !errors.As(err, &se) || se.Required != "user/Task.rs" {
		t.Fatalf("NewScopeError = %v", err)
	}
	if err.Error() != "access: insufficient scope: requires user/Task.rs" {
		t.Fatalf("text = %q", err)
	}
}
