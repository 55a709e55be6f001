package symbolize

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/ulikunitz/xz"
)

// DefaultDebugDir is where distributions install separate debug files.
const DefaultDebugDir = "/usr/lib/debug"

// addDebugInfo completes a module that lacks DWARF from its separate debug
// file: by build-id (DIR/.build-id/xx/rest.debug), by .gnu_debuglink next to
// the file or under a debug directory (checked by CRC), or else from its
// MiniDebugInfo (.gnu_debugdata, symbols only). The debug file's DWARF is
// read within the symbolizer's budget. The caller holds m.mu.
func (s *Symbolizer) addDebugInfo(m *Module, path string) {
	for _, c := range s.debugCandidates(m, path) {
		dbg, err := s.openDebugFile(c.path, func(f *os.File, dbg *Module) bool {
			if c.byBuildID {
				return dbg.BuildID == m.BuildID
			}
			h := crc32.NewIEEE()
			_, err := io.Copy(h, io.LimitReader(f, maxDebugInfo))
			return err == nil && h.Sum32() == m.linkCRC
		})
		if err != nil {
			continue
		}
		m.merge(dbg, c.path)
		return
	}
	if len(m.debugdata) > 0 {
		if dbg, err := miniDebugInfo(m.debugdata); err == nil {
			m.merge(dbg, ".gnu_debugdata")
		}
	}
}

type debugCandidate struct {
	path      string
	byBuildID bool
}

func (s *Symbolizer) debugCandidates(m *Module, path string) []debugCandidate {
	var out []debugCandidate
	if len(m.BuildID) > 2 {
		for _, dir := range s.debugDirs {
			out = append(out, debugCandidate{filepath.Join(dir, ".build-id", m.BuildID[:2], m.BuildID[2:]+".debug"), true})
		}
	}
	if m.debuglink != "" && filepath.Base(m.debuglink) == m.debuglink {
		dir := filepath.Dir(path)
		out = append(out, debugCandidate{path: filepath.Join(dir, m.debuglink)}, debugCandidate{path: filepath.Join(dir, ".debug", m.debuglink)})
		for _, d := range s.debugDirs {
			out = append(out, debugCandidate{path: filepath.Join(d, dir, m.debuglink)})
		}
	}
	return out
}

// openDebugFile opens and parses a debug file, and if it passes check (its
// build-id or CRC matches), reads its DWARF within the symbolizer's budget:
// a file that does not match costs no DWARF.
func (s *Symbolizer) openDebugFile(path string, check func(*os.File, *Module) bool) (*Module, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, _, err := regularFile(f, path); err != nil {
		return nil, err
	}
	dbg, err := OpenModule(f)
	if err != nil {
		return nil, err
	}
	if !check(f, dbg) {
		return nil, fmt.Errorf("debug file %s: does not match", path)
	}
	dbg.loadDWARF(f, &s.dwarf)
	return dbg, nil
}

// miniDebugInfo reads the xz-compressed ELF of .gnu_debugdata, within the caps.
func miniDebugInfo(data []byte) (*Module, error) {
	r, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read .gnu_debugdata: %w", err)
	}
	elfData, err := io.ReadAll(io.LimitReader(r, maxSymbolTable+1))
	if err != nil {
		return nil, fmt.Errorf("read .gnu_debugdata: %w", err)
	}
	if len(elfData) > maxSymbolTable {
		return nil, fmt.Errorf("read .gnu_debugdata: larger than %d bytes", maxSymbolTable)
	}
	return OpenModule(bytes.NewReader(elfData))
}
