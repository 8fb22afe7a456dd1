// dashboard-check: test infrastructure, not product code. It reads Grafana dashboard JSON
// files and decodes each strictly (no unknown fields) into the dashboard type of Grafana's
// own generated SDK, then runs the SDK's Validate: the "schema check" of the chart's
// dashboard (tests/unit/test_helm_chart.py).
package main

import (
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE.json...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range os.Args[1:] {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
			continue
		}
		var board dashboard.Dashboard
		if err := board.UnmarshalJSONStrict(raw); failure(err) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
			continue
		}
		if err := board.Validate(); failure(err) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
			continue
		}
		fmt.Printf("%s: valid (%d panels)\n", path, len(board.Panels))
	}
	if failed {
		os.Exit(1)
	}
}

// failure: the SDK returns its error list as a typed value even when the list is empty.
func failure(err error) bool {
	if list, ok := err.(cog.BuildErrors); ok {
		return len(list) > 0
	}
	return err != nil
}
