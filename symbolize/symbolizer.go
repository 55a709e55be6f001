package symbolize

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Frame is one symbolized stack frame.
type Frame struct {
	Function string // function name, or "module+0xoffset" when the module has no symbol for it
	Module   string // path of the mapped file as the process sees it
}

// Symbolizer resolves addresses of traced processes. It is safe for concurrent use.
type Symbolizer struct {
	fs   procfs.FS
	root string

	mu      sync.Mutex
	procs   map[int][]Mapping
	modules map[fileID]*Module // nil: the file could not be read
}

type fileID struct{ dev, inode uint64 }

// New returns a Symbolizer that reads processes under procRoot (normally /proc).
func New(procRoot string) (*Symbolizer, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", procRoot, err)
	}
	return &Symbolizer{fs: fs, root: procRoot, procs: make(map[int][]Mapping), modules: make(map[fileID]*Module)}, nil
}

// Snapshot records the mappings of pid and reads the symbols of its files,
// so that its stacks can be symbolized after it exits. Later calls for the
// same pid add mappings that appeared since.
func (s *Symbolizer) Snapshot(pid int) error {
	maps, err := ReadMaps(s.fs, pid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := s.procs[pid]
	for _, m := range maps {
		if _, ok := find(known, m.Start); !ok {
			known = append(known, m)
		}
		s.module(pid, m)
	}
	s.procs[pid] = known
	return nil
}

// Module returns the symbols of the file behind mapping m of pid, reading them on first use.
func (s *Symbolizer) Module(pid int, m Mapping) (*Module, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mod := s.module(pid, m); mod != nil {
		return mod, nil
	}
	return nil, fmt.Errorf("read symbols of %s", m.Path)
}

func (s *Symbolizer) module(pid int, m Mapping) *Module {
	id := fileID{m.Dev, m.Inode}
	if mod, ok := s.modules[id]; ok {
		return mod
	}
	mod, _ := s.open(pid, m)
	s.modules[id] = mod
	return mod
}

func (s *Symbolizer) open(pid int, m Mapping) (*Module, error) {
	f, err := OpenMapped(s.root, pid, m)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return OpenModule(f)
}

// OpenMapped opens the file behind mapping m of pid: through map_files, which
// reaches the very file mapped even if it was deleted or lives in another
// mount namespace, or else by path inside the process's root. Either way the
// file must be a regular file with the mapping's inode. The returned file's
// Name is a path that reaches the same file while the process lives.
func OpenMapped(procRoot string, pid int, m Mapping) (*os.File, error) {
	f, err := os.Open(filepath.Join(procRoot, fmt.Sprint(pid), "map_files", fmt.Sprintf("%x-%x", m.Start, m.End)))
	if err != nil {
		f, err = os.Open(filepath.Join(procRoot, fmt.Sprint(pid), "root", m.Path))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", m.Path, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", m.Path, err)
	}
	if st.Ino != m.Inode || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("open %s: not the mapped file", m.Path)
	}
	return f, nil
}

// Frames symbolizes return addresses of pid, innermost first.
func (s *Symbolizer) Frames(pid int, ips []uint64) []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps := s.procs[pid]
	frames := make([]Frame, 0, len(ips))
	for _, ip := range ips {
		m, ok := find(maps, ip)
		if !ok {
			frames = append(frames, Frame{Function: "[unknown]"})
			continue
		}
		// A return address points after the call; look up the call itself.
		off := ip - 1 - m.Start + m.Offset
		f := Frame{Module: m.Path}
		if mod := s.modules[fileID{m.Dev, m.Inode}]; mod != nil {
			f.Function, ok = mod.Function(off)
		}
		if !ok || f.Function == "" {
			f.Function = fmt.Sprintf("%s+0x%x", filepath.Base(m.Path), off)
		}
		frames = append(frames, f)
	}
	return frames
}
