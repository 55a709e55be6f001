package symbolize

import (
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
)

// Mapping is one executable, file-backed region of a process's address space.
type Mapping struct {
	Start, End uint64
	Offset     uint64 // file offset of Start
	Dev, Inode uint64
	Path       string // path as the process sees it, without " (deleted)"
}

// ReadMaps returns the executable file mappings of pid, in address order.
func ReadMaps(fs procfs.FS, pid int) ([]Mapping, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return nil, fmt.Errorf("open process %d: %w", pid, err)
	}
	maps, err := p.ProcMaps()
	if err != nil {
		return nil, fmt.Errorf("read maps of process %d: %w", pid, err)
	}
	var out []Mapping
	for _, m := range maps {
		if m.Perms == nil || !m.Perms.Execute || !strings.HasPrefix(m.Pathname, "/") || m.Inode == 0 {
			continue
		}
		out = append(out, Mapping{
			Start:  uint64(m.StartAddr),
			End:    uint64(m.EndAddr),
			Offset: uint64(m.Offset),
			Dev:    m.Dev,
			Inode:  m.Inode,
			Path:   strings.TrimSuffix(m.Pathname, " (deleted)"),
		})
	}
	return out, nil
}
