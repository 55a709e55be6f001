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

// Process is a snapshot of one process image's mappings. A process that
// execs gets a new snapshot: addresses of the old image stay with the old one.
type Process struct {
	Pid  int
	maps []Mapping
}

// Symbolizer resolves addresses of traced processes and caches the symbols
// of each file once, however many processes map it. It is safe for
// concurrent use.
type Symbolizer struct {
	fs   procfs.FS
	root string

	mu      sync.Mutex
	modules map[FileID]*Module // nil: the file could not be read
}

// FileID identifies a file by device and inode, as /proc/PID/maps shows them.
type FileID struct{ Dev, Inode uint64 }

// ID returns the identity of the file behind m.
func (m Mapping) ID() FileID { return FileID{m.Dev, m.Inode} }

// New returns a Symbolizer that reads processes under procRoot (normally /proc).
func New(procRoot string) (*Symbolizer, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", procRoot, err)
	}
	return &Symbolizer{fs: fs, root: procRoot, modules: make(map[FileID]*Module)}, nil
}

// Snapshot records the mappings of pid and reads the symbols of its files,
// so that its stacks can be symbolized after it exits.
func (s *Symbolizer) Snapshot(pid int) (*Process, error) {
	p := &Process{Pid: pid}
	return p, s.Refresh(p)
}

// Refresh adds the mappings p's process made since its snapshot.
func (s *Symbolizer) Refresh(p *Process) error {
	maps, err := ReadMaps(s.fs, p.Pid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range maps {
		if _, ok := find(p.maps, m.Start); !ok {
			p.maps = append(p.maps, m)
		}
		s.module(p.Pid, m)
	}
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

// File returns the symbols and identity of the file at path in mtrace's own
// mount namespace, for files no process has mapped yet.
func (s *Symbolizer) File(path string) (*Module, FileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, FileID{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	id, err := regularFile(f, path)
	if err != nil {
		return nil, FileID{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mod, ok := s.modules[id]
	if !ok {
		mod, err = OpenModule(f)
		if err != nil {
			return nil, FileID{}, fmt.Errorf("read symbols of %s: %w", path, err)
		}
		s.modules[id] = mod
	}
	if mod == nil {
		return nil, FileID{}, fmt.Errorf("read symbols of %s", path)
	}
	return mod, id, nil
}

func (s *Symbolizer) module(pid int, m Mapping) *Module {
	if mod, ok := s.modules[m.ID()]; ok {
		return mod
	}
	mod, _ := s.open(pid, m)
	s.modules[m.ID()] = mod
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
// file must be a regular file with the mapping's identity. The returned
// file's Name is a path that reaches the same file while the process lives.
func OpenMapped(procRoot string, pid int, m Mapping) (*os.File, error) {
	f, err := os.Open(filepath.Join(procRoot, fmt.Sprint(pid), "map_files", fmt.Sprintf("%x-%x", m.Start, m.End)))
	if err != nil {
		f, err = os.Open(filepath.Join(procRoot, fmt.Sprint(pid), "root", m.Path))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", m.Path, err)
		}
	}
	id, err := regularFile(f, m.Path)
	if err == nil && id.Inode != m.Inode {
		err = fmt.Errorf("open %s: not the mapped file", m.Path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// regularFile returns the identity of f, which must be a regular file.
func regularFile(f *os.File, path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return FileID{}, fmt.Errorf("open %s: not a regular file", path)
	}
	return FileID{unix.Mkdev(unix.Major(st.Dev), unix.Minor(st.Dev)), st.Ino}, nil
}

// Frames symbolizes return addresses of the process image p, innermost first.
func (s *Symbolizer) Frames(p *Process, ips []uint64) []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := make([]Frame, 0, len(ips))
	for _, ip := range ips {
		m, ok := find(p.maps, ip)
		if !ok {
			frames = append(frames, Frame{Function: "[unknown]"})
			continue
		}
		// A return address points after the call; look up the call itself.
		off := ip - 1 - m.Start + m.Offset
		f := Frame{Module: m.Path}
		if mod := s.modules[m.ID()]; mod != nil {
			f.Function, _ = mod.Function(off)
		}
		if f.Function == "" {
			f.Function = fmt.Sprintf("%s+0x%x", filepath.Base(m.Path), off)
		}
		frames = append(frames, f)
	}
	return frames
}
