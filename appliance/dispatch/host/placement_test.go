package host

import (
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		affinity []string
		counts   map[string]Count
		want     []string
	}{
		{"local idle first", nil, map[string]Count{"a": {1, 4}, "b": {3, 4}}, []string{"a", "b"}},
		{"affinity before local", []string{"c"}, map[string]Count{"a": {1, 4}, "c": {0, 4}}, []string{"c", "a"}},
		{"affinity in table order, once", []string{"b", "a", "b", ""}, map[string]Count{"a": {2, 4}}, []string{"b", "a"}},
		{"local drained: most idle peer first", nil, map[string]Count{"a": {0, 4}, "b": {1, 4}, "c": {3, 4}}, []string{"c", "b"}},
		{"ties by ID", nil, map[string]Count{"a": {0, 4}, "c": {2, 4}, "b": {2, 4}}, []string{"b", "c"}},
		{"none idle: nothing, the local queue", nil, map[string]Count{"a": {0, 4}, "b": {0, 4}}, nil},
		{"unknown self", nil, map[string]Count{"b": {1, 1}}, []string{"b"}},
	} {
		if got := Order("a", tc.affinity, tc.counts); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
