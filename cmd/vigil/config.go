package main

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

// env reads process configuration (never tenant configuration) from the environment.
type env struct{ g *globals }

func (e env) str(name, def string) string {
	if v := strings.TrimSpace(e.g.Getenv(name)); v != "" {
		return v
	}
	return def
}

func (e env) boolean(name string, def bool) (bool, error) {
	v := strings.TrimSpace(e.g.Getenv(name))
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

func (e env) duration(name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(e.g.Getenv(name))
	if v == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%s=%q: want a positive duration such as 20s", name, v)
}

// appURL is VIGIL_APP_DATABASE_URL, else the owner URL with the app role as user.
func appURL(g *globals) (string, error) {
	if u := g.Getenv("VIGIL_APP_DATABASE_URL"); u != "" {
		return u, nil
	}
	u, err := store.AppURL(ownerURL(g))
	if err != nil {
		return "", fmt.Errorf("VIGIL_DATABASE_URL: %w", err)
	}
	return u, nil
}

// keyProvider loads the key-encryption key named by VIGIL_KEY_FILE.
func keyProvider(g *globals) (*seal.LocalKey, error) {
	path := g.Getenv("VIGIL_KEY_FILE")
	if path == "" {
		return nil, fmt.Errorf("VIGIL_KEY_FILE is not set: it names the local key-encryption key (create one with 'vigil keys generate FILE')")
	}
	k, err := seal.LoadLocalKey(path)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_KEY_FILE: %w", err)
	}
	return k, nil
}

// cliActor names the operator for audit events written by the CLI.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}
