package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// maxConfigFile bounds a config file.
const maxConfigFile = 1 << 20

// The config file (--config /etc/samrack/samrackd.yaml) is YAML whose keys
// are the long flag names without the dashes and whose values are what the
// flag takes, e.g.
//
//	data: /var/lib/samrack
//	raft: 10.0.0.11:7468
//	vip: 192.0.2.10/24
//	vip-interface: eth0
//	host: [samrack.example, 10.0.0.10]
//
// A flag given on the command line wins over the file. An unknown key, a
// value of the wrong kind or a file over 1 MiB is refused with what is
// wrong; nothing is applied then.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxConfigFile {
		return fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigFile)
	}
	vals, err := parseConfig(data, fs)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Changed(k) {
			continue // the command line wins
		}
		if err := fs.Set(k, vals[k]); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// parseConfig turns the YAML into flag values, checking every key against
// fs (nil: any key).
func parseConfig(data []byte, fs *pflag.FlagSet) (map[string]string, error) {
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a YAML map of flag names to values: %w", err)
	}
	out := map[string]string{}
	for k, v := range doc {
		if k == "config" {
			return nil, errors.New("key config: a config file cannot name another")
		}
		if fs != nil && fs.Lookup(k) == nil {
			return nil, fmt.Errorf("unknown key %q (the keys are samrackd's flag names, e.g. vip, vip-interface, raft)", k)
		}
		s, err := flagValue(v)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

func flagValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string, bool, int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, err := flagValue(e)
			if err != nil {
				return "", err
			}
			if _, nested := e.([]any); nested || strings.Contains(s, ",") {
				return "", errors.New("a list of plain values without commas")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("a %T is not a flag value", v)
}
