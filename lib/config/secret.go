package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret is a password or key that must never reach a command line, output
// or a log. In TOML it is either a plain string (inline) or a table:
//
//	password = { file = "/etc/pbxha/mysql.pw" }
//	password = { env = "PBXHA_MYSQL_PASSWORD" }
//
// String and GoString print "[secret]", so a stray %v cannot leak it.
type Secret struct {
	Inline string `toml:"-"`
	File   string `toml:"file"`
	Env    string `toml:"env"`

	key, cfg string
}

// UnmarshalTOML accepts a string or a {file, env} table.
func (s *Secret) UnmarshalTOML(v any) error {
	switch t := v.(type) {
	case string:
		s.Inline = t
		return nil
	case map[string]any:
		for k, val := range t {
			str, ok := val.(string)
			if !ok {
				return fmt.Errorf("secret key %q must be a string", k)
			}
			switch k {
			case "file":
				s.File = str
			case "env":
				s.Env = str
			default:
				return fmt.Errorf("secret has unknown key %q (use file or env)", k)
			}
		}
		return nil
	}
	return fmt.Errorf("a secret is a string or a table {file = ..., env = ...}")
}

// MarshalTOML writes the form it was given in.
func (s Secret) MarshalTOML() ([]byte, error) {
	switch {
	case s.File != "":
		return []byte(fmt.Sprintf("{ file = %q }", s.File)), nil
	case s.Env != "":
		return []byte(fmt.Sprintf("{ env = %q }", s.Env)), nil
	}
	return []byte(fmt.Sprintf("%q", s.Inline)), nil
}

// IsSet reports whether any source is configured.
func (s Secret) IsSet() bool { return s.Inline != "" || s.File != "" || s.Env != "" }

// Value resolves the secret: the environment variable when named and set,
// else the file (first line, trailing newline removed), else the inline
// value. Errors name the config key and file but never the value.
func (s Secret) Value() (string, error) {
	if s.Env != "" {
		if v, ok := os.LookupEnv(s.Env); ok {
			return v, nil
		}
		if s.File == "" && s.Inline == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set", s.where(), s.Env)
		}
	}
	if s.File != "" {
		return ReadSecretFile(s.File)
	}
	return s.Inline, nil
}

func (s Secret) where() string {
	if s.key == "" {
		return "secret"
	}
	return s.cfg + ": " + s.key
}

// String never shows the value.
func (s Secret) String() string { return "[secret]" }

// GoString never shows the value.
func (s Secret) GoString() string { return "[secret]" }

// FromFile and FromEnv build secrets in code (flags like --secret-file).
func FromFile(path string) Secret { return Secret{File: path} }

// FromEnv builds a secret read from an environment variable.
func FromEnv(name string) Secret { return Secret{Env: name} }

// ReadSecretFile reads a secret file: its first line, without the newline.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}
