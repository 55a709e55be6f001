package sink

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Formats are the report formats, as ReportName puts them in a name.
var Formats = []string{"text", "json", "html", "pprof", "folded"}

// reportTime is how ReportName writes the time of a report.
const reportTime = "20060102T150405.000000000Z"

// reportPattern matches exactly the names ReportName gives; retention
// counts and removes no other file.
var reportPattern = regexp.MustCompile(`^mtrace-[0-9]{8}T[0-9]{6}\.[0-9]{9}Z\.(` + strings.Join(Formats, "|") + `)$`)

// ReportName names a report written at t in an output directory.
func ReportName(t time.Time, format string) string {
	return "mtrace-" + t.UTC().Format(reportTime) + "." + format
}

// Prune keeps the newest keep reports in d and removes the older ones. It
// counts and removes only regular files named as ReportName names them and
// owned by d's writer, and never removes written, the report just written,
// whatever its name. It works as the writer.
func (d *Dir) Prune(keep int, written string) error {
	return d.asWriter(func() error { return d.prune(keep, written) })
}

// prune is Prune, run as the writer.
func (d *Dir) prune(keep int, written string) error {
	names, err := d.reports()
	if err != nil {
		return err
	}
	sort.Strings(names) // the names sort by time
	removed := 0
	for _, name := range names {
		if len(names)-removed <= keep {
			break
		}
		if name == written {
			continue
		}
		if err := unix.Unlinkat(d.fd, name, 0); err != nil {
			return fmt.Errorf("remove old report %s: %w", name, err)
		}
		removed++
	}
	return nil
}

// reports lists the reports in d that Prune may count and remove.
func (d *Dir) reports() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.path, err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.path, err)
	}
	var names []string
	for _, e := range entries {
		if !reportPattern.MatchString(e.Name()) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFREG && int(st.Uid) == d.uid {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
