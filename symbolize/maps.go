package symbolize

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mapping is one executable, file-backed region of a process's address space.
type Mapping struct {
	Start, End uint64
	Offset     uint64 // file offset of Start
	Dev, Inode uint64
	Path       string // path as the process sees it, without " (deleted)"
}

// ReadMaps returns the executable file mappings of pid, in address order,
// from procRoot/PID/maps. It parses the lines itself, since a path may hold
// any byte but NUL and "/": runs of spaces, tabs and carriage returns are
// kept as they are (procfs's parser folds them into one space), and the
// kernel's one escape, "\012" for a newline, is undone, so that the path
// names the file again.
func ReadMaps(procRoot string, pid int) ([]Mapping, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil, fmt.Errorf("open maps of process %d: %w", pid, err)
	}
	defer f.Close()
	var out []Mapping
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		m, ok, err := parseMapping(scan.Text())
		if err != nil {
			return nil, fmt.Errorf("read maps of process %d: %w", pid, err)
		}
		if ok {
			out = append(out, m)
		}
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("read maps of process %d: %w", pid, err)
	}
	return out, nil
}

// parseMapping parses one line of a maps file; ok is false for a mapping
// that is not executable code from a file.
func parseMapping(line string) (m Mapping, ok bool, err error) {
	var field [5]string
	rest := line
	for i := range field {
		rest = strings.TrimLeft(rest, " ")
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		field[i], rest = rest[:end], rest[end:]
	}
	if field[4] == "" {
		return m, false, fmt.Errorf("truncated line %q", line)
	}
	start, end, okAddr := strings.Cut(field[0], "-")
	major, minor, okDev := strings.Cut(field[3], ":")
	if !okAddr || !okDev || len(field[1]) < 4 {
		return m, false, fmt.Errorf("malformed line %q", line)
	}
	var nums [6]uint64
	for i, t := range []struct {
		s    string
		base int
		bits int
	}{{start, 16, 64}, {end, 16, 64}, {field[2], 16, 64}, {major, 16, 32}, {minor, 16, 32}, {field[4], 10, 64}} {
		if nums[i], err = strconv.ParseUint(t.s, t.base, t.bits); err != nil {
			return m, false, fmt.Errorf("malformed line %q: %w", line, err)
		}
	}
	path := strings.TrimLeft(rest, " ")
	if field[1][2] != 'x' || nums[5] == 0 || !strings.HasPrefix(path, "/") {
		return m, false, nil
	}
	path = strings.ReplaceAll(strings.TrimSuffix(path, " (deleted)"), `\012`, "\n")
	return Mapping{
		Start: nums[0], End: nums[1], Offset: nums[2],
		Dev: unix.Mkdev(uint32(nums[3]), uint32(nums[4])), Inode: nums[5],
		Path: path,
	}, true, nil
}
