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

// Location is a place in a file: where a stack frame points, as the kernel
// resolved it when the stack was first seen.
type Location struct {
	File   FileID // zero: no file is mapped there
	Offset uint64 // offset of the return address into the file
}

// Symbolizer names locations in the files traced processes map. It learns
// each file (its path and symbols) once, from any process that maps it, so
// that a process that has exited is still symbolized. It is safe for
// concurrent use.
type Symbolizer struct {
	fs   procfs.FS
	root string

	mu    sync.Mutex
	files map[FileID]*file
}

// file is what the symbolizer knows of one file.
type file struct {
	path string
	mod  *Module // nil: the file could not be read
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
	return &Symbolizer{fs: fs, root: procRoot, files: make(map[FileID]*file)}, nil
}

// Learn reads the files pid maps that the symbolizer does not know yet.
func (s *Symbolizer) Learn(pid int) error {
	maps, err := ReadMaps(s.fs, pid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range maps {
		s.module(pid, m)
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
// mount namespace, for files no process has mapped yet. With want set, the
// file must be that one: a path the kernel named, checked against its inode.
func (s *Symbolizer) File(path string, want FileID) (*Module, FileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, FileID{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	id, err := regularFile(f, path)
	if err != nil {
		return nil, FileID{}, err
	}
	if want != (FileID{}) && id != want {
		return nil, FileID{}, fmt.Errorf("open %s: not the file the kernel saw", path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, ok := s.files[id]
	if !ok {
		mod, err := OpenModule(f)
		if err != nil {
			return nil, FileID{}, fmt.Errorf("read symbols of %s: %w", path, err)
		}
		fi = &file{path: path, mod: mod}
		s.files[id] = fi
	}
	if fi.mod == nil {
		return nil, FileID{}, fmt.Errorf("read symbols of %s", path)
	}
	return fi.mod, id, nil
}

// Path returns the path of a file the symbolizer has learned.
func (s *Symbolizer) Path(id FileID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fi := s.files[id]; fi != nil {
		return fi.path, true
	}
	return "", false
}

func (s *Symbolizer) module(pid int, m Mapping) *Module {
	if fi, ok := s.files[m.ID()]; ok {
		return fi.mod
	}
	mod, _ := s.open(pid, m)
	s.files[m.ID()] = &file{path: m.Path, mod: mod}
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

// Frames names locations, innermost first. A location in a file the
// symbolizer never learned, or without a symbol, is named by its module and
// offset; one outside any file is "[anonymous]".
func (s *Symbolizer) Frames(locs []Location) []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := make([]Frame, 0, len(locs))
	for _, loc := range locs {
		if loc.File == (FileID{}) {
			frames = append(frames, Frame{Function: "[anonymous]"})
			continue
		}
		fi := s.files[loc.File]
		if fi == nil {
			frames = append(frames, Frame{Function: fmt.Sprintf("[unknown module]+0x%x", loc.Offset)})
			continue
		}
		f := Frame{Module: fi.path}
		if fi.mod != nil && loc.Offset > 0 {
			// A return address points after the call; look up the call itself.
			f.Function, _ = fi.mod.Function(loc.Offset - 1)
		}
		if f.Function == "" {
			f.Function = fmt.Sprintf("%s+0x%x", filepath.Base(fi.path), loc.Offset)
		}
		frames = append(frames, f)
	}
	return frames
}
