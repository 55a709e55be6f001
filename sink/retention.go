package sink

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// reportPrefix starts the names mtrace gives reports in an output directory;
// only such files are ever pruned.
const reportPrefix = "mtrace-"

// ReportName names a report written at t in an output directory.
func ReportName(t time.Time, format string) string {
	return reportPrefix + t.UTC().Format("20060102T150405.000000000Z") + "." + format
}

// Prune keeps the newest keep reports mtrace named in dir and removes the rest.
func Prune(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), reportPrefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the names sort by time
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			return fmt.Errorf("remove old report: %w", err)
		}
		names = names[1:]
	}
	return nil
}
