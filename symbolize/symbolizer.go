package symbolize

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Frame is one symbolized stack frame. Where DWARF says code was inlined,
// one location gives several frames: the inlined functions, innermost
// first, each with Inlined set, then the function they were inlined into.
type Frame struct {
	Function string // demangled function name, or "module+0xoffset" when nothing names it
	Module   string // path of the mapped file as the process sees it
	BuildID  string // the module's build-id, hex; "" if it has none
	File     string // source file, if DWARF is known
	Line     int    // source line, if DWARF is known
	Inlined  bool   // inlined into the next frame
	Offset   uint64 // offset of the return address into the module; 0 if unknown
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
	root      string
	debugDirs []string

	mu    sync.Mutex
	files map[FileID]*file
	dwarf budget // bytes of DWARF held, bounded by maxDWARF
}

// file is what the symbolizer knows of one file. Its module was read from
// the file itself and belongs to it alone, never to another file with the
// same build-id.
type file struct {
	path    string
	version version // of the file when mod was read from it
	mod     *Module // nil: the file could not be read
	named   bool    // only its name is known (see Name): reading it is tried again
	pid     int     // with mapping, where it was read from; 0: from path
	mapping Mapping
}

// FileID identifies a file by device and inode, as /proc/PID/maps shows them.
type FileID struct{ Dev, Inode uint64 }

// version tells apart what one device and inode held at different times: a
// file rewritten in place changes its size or its modification time, and
// always its change time, which its owner cannot set.
type version struct{ size, mtime, ctime int64 }

// ID returns the identity of the file behind m.
func (m Mapping) ID() FileID { return FileID{m.Dev, m.Inode} }

// New returns a Symbolizer that reads processes under procRoot (normally
// /proc) and looks for separate debug files in debugDirs, then DefaultDebugDir.
func New(procRoot string, debugDirs ...string) (*Symbolizer, error) {
	if _, err := os.Stat(procRoot); err != nil {
		return nil, fmt.Errorf("open %s: %w", procRoot, err)
	}
	return &Symbolizer{
		root:      procRoot,
		debugDirs: append(append([]string(nil), debugDirs...), DefaultDebugDir),
		files:     make(map[FileID]*file),
		dwarf:     budget{limit: maxDWARF},
	}, nil
}

// Learn reads the files pid maps that the symbolizer does not know yet.
func (s *Symbolizer) Learn(pid int) error {
	maps, err := ReadMaps(s.root, pid)
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

// Module returns the symbols of the file behind mapping m of pid, reading
// them on first use. They may be of an earlier version of the file: what
// probes a file reads its symbols again with ModuleFile or Open.
func (s *Symbolizer) Module(pid int, m Mapping) (*Module, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mod := s.module(pid, m); mod != nil {
		return mod, nil
	}
	return nil, fmt.Errorf("read symbols of %s", m.Path)
}

// ModuleFile opens the file behind mapping m of pid (OpenMapped) and
// returns it with its symbols, as Open reads them. The caller closes it.
func (s *Symbolizer) ModuleFile(pid int, m Mapping) (*os.File, *Module, error) {
	f, err := OpenMapped(s.root, pid, m)
	if err != nil {
		return nil, nil, err
	}
	mod, _, err := s.open(f, &file{path: m.Path, pid: pid, mapping: m})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, mod, nil
}

// Open returns the symbols and identity of the open file f, found at path:
// read from f itself, or known from an earlier read of the same version of
// the file (device, inode, size, modification and change times, as f has
// them now). Whoever probes the file plans and attaches through f.
func (s *Symbolizer) Open(f *os.File, path string) (*Module, FileID, error) {
	return s.open(f, &file{path: path})
}

// open is Open, for a file learned as where says (its path, and its process
// and mapping if it was opened through them).
func (s *Symbolizer) open(f *os.File, where *file) (*Module, FileID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(f, where)
}

// read returns the symbols and identity of the open file f, learned as where
// says: read from f unless the same version of the file is known. A file
// that cannot be parsed is not read again until it changes. The caller
// holds mu.
func (s *Symbolizer) read(f *os.File, where *file) (*Module, FileID, error) {
	id, v, err := regularFile(f, where.path)
	if err != nil {
		return nil, FileID{}, err
	}
	fi, ok := s.files[id]
	if !ok || fi.named || fi.version != v {
		if ok && fi.mod != nil {
			fi.mod.release(&s.dwarf) // an older version of the file: what it held is free again
		}
		where.version = v
		where.mod, err = OpenModule(f)
		s.files[id] = where
		if err != nil {
			return nil, FileID{}, fmt.Errorf("read symbols of %s: %w", where.path, err)
		}
		fi = where
	}
	if fi.mod == nil {
		return nil, FileID{}, fmt.Errorf("read symbols of %s", where.path)
	}
	return fi.mod, id, nil
}

// File returns the symbols and identity of the file at path in mtrace's own
// mount namespace, for files no process has mapped yet. With want set, the
// file must be that one: a path the kernel named, checked against its inode.
func (s *Symbolizer) File(path string, want FileID) (*Module, FileID, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, FileID{}, err
	}
	defer f.Close()
	mod, id, err := s.Open(f, path)
	if err != nil {
		return nil, FileID{}, err
	}
	if want != (FileID{}) && id != want {
		return nil, FileID{}, fmt.Errorf("open %s: not the file the kernel saw", path)
	}
	return mod, id, nil
}

// Name records the path the kernel gave for file id when the file cannot be
// read (deleted or replaced, or in another mount namespace, and no longer
// mapped where it was looked for): its frames are named after it, marked
// "(unreadable)", and their offsets; it is read after all if a process is
// seen mapping it.
func (s *Symbolizer) Name(id FileID, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[id]; !ok {
		s.files[id] = &file{path: path + " (unreadable)", named: true}
	}
}

// module returns the symbols of a mapped file, reading them once. A file
// that could not be opened (its process exited meanwhile) is tried again
// later; one that could not be parsed is not.
func (s *Symbolizer) module(pid int, m Mapping) *Module {
	if fi, ok := s.files[m.ID()]; ok && !fi.named {
		return fi.mod
	}
	f, err := OpenMapped(s.root, pid, m)
	if err != nil {
		return nil
	}
	defer f.Close()
	mod, _, _ := s.read(f, &file{path: m.Path, pid: pid, mapping: m})
	return mod
}

// complete reads, once, the DWARF of the module of file id: from the file
// itself, opened again and checked to be the version its symbols came from,
// or else from its separate debug file; then indexes it, dropping it if
// malformed. Nothing of DWARF is read before a frame needs it, and never
// past the symbolizer's budget: over it, the module has no file:line. It
// holds only the module's lock while it searches and reads.
func (s *Symbolizer) complete(id FileID, fi *file) {
	mod := fi.mod
	mod.mu.Lock()
	defer mod.mu.Unlock()
	if mod.completed {
		return
	}
	mod.completed = true
	if mod.HasDWARF() {
		if f, err := s.reopen(id, fi); err == nil {
			mod.loadDWARF(f, &s.dwarf)
			f.Close()
		}
	} else {
		s.addDebugInfo(mod, fi.path)
	}
	mod.indexDWARF(&s.dwarf)
}

// reopen opens again the file fi was read from: through the process and
// mapping it was read through, or else by its path, provided it is still
// the same version of the same file.
func (s *Symbolizer) reopen(id FileID, fi *file) (*os.File, error) {
	var f *os.File
	var err error
	if fi.pid != 0 {
		f, err = OpenMapped(s.root, fi.pid, fi.mapping)
	}
	if fi.pid == 0 || err != nil {
		if f, err = openRegular(fi.path); err != nil {
			return nil, err
		}
	}
	got, v, err := regularFile(f, fi.path)
	if err == nil && (got != id || v != fi.version) {
		err = fmt.Errorf("open %s: not the file its symbols were read from", fi.path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenMapped opens the file behind mapping m of pid: through map_files, which
// reaches the very file mapped even if it was deleted or lives in another
// mount namespace, or else by path resolved inside the process's root (its
// symlinks cannot lead out of it). Either way the file must be a regular
// file with the mapping's device and inode.
func OpenMapped(procRoot string, pid int, m Mapping) (*os.File, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	f, err := openRegular(filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", m.Start, m.End)))
	if err != nil {
		f, err = openInRoot(filepath.Join(dir, "root"), m.Path)
		if err != nil {
			return nil, err
		}
	}
	id, _, err := regularFile(f, m.Path)
	if err == nil && id != m.ID() {
		err = fmt.Errorf("open %s: not the mapped file", m.Path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openInRoot opens path as if root were "/": absolute symlinks and ".." stay
// inside root, and magic links (/proc/self/...) are not followed.
func openInRoot(root, path string) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", path, root, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenFile opens the regular file at path for reading, without blocking: a
// target can put a FIFO where a library should be, and opening a FIFO would
// wait forever.
func OpenFile(path string) (*os.File, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	if _, _, err := regularFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openRegular opens path for reading without blocking (see OpenFile).
// Callers check the result is a regular file with regularFile.
func openRegular(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// regularFile returns the identity and version of f, which must be a regular file.
func regularFile(f *os.File, path string) (FileID, version, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileID{}, version{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return FileID{}, version{}, fmt.Errorf("open %s: not a regular file", path)
	}
	return FileID{st.Dev, st.Ino}, version{st.Size, st.Mtim.Nano(), st.Ctim.Nano()}, nil
}

// Frames names locations, innermost first; a location where DWARF says
// code was inlined gives a frame per inlined function. A location in a file
// the symbolizer never learned, or without a symbol, is named by its module
// and offset; one outside any file is "[anonymous]".
func (s *Symbolizer) Frames(locs []Location) []Frame {
	files := make([]*file, len(locs))
	s.mu.Lock()
	for i, loc := range locs {
		files[i] = s.files[loc.File]
	}
	s.mu.Unlock()
	frames := make([]Frame, 0, len(locs))
	for i, loc := range locs {
		if loc.File == (FileID{}) {
			frames = append(frames, Frame{Function: "[anonymous]"})
			continue
		}
		fi := files[i]
		if fi == nil {
			frames = append(frames, Frame{Function: fmt.Sprintf("[unknown module]+0x%x", loc.Offset), Offset: loc.Offset})
			continue
		}
		base := Frame{Module: fi.path, Offset: loc.Offset}
		var found []inlineFrame
		if fi.mod != nil && loc.Offset > 0 {
			s.complete(loc.File, fi)
			base.BuildID = fi.mod.BuildID
			// A return address points after the call; look up the call itself.
			found = fi.mod.Lookup(loc.Offset - 1)
		}
		if len(found) == 0 {
			base.Function = fmt.Sprintf("%s+0x%x", filepath.Base(fi.path), loc.Offset)
			frames = append(frames, base)
			continue
		}
		for i, in := range found {
			f := base
			f.Function, f.File, f.Line, f.Inlined = in.function, in.file, in.line, i < len(found)-1
			frames = append(frames, f)
		}
	}
	return frames
}
