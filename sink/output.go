package sink

import (
	"io"
	"path/filepath"
	"syscall"

	"github.com/mtrace/mtrace/policy"
)

// Output is one output of a run, a report or a metrics textfile, written
// under every rule of its policy.File: only in the policy's directory if
// it names one; with mode 0600 through its directory opened once without
// following symlinks (Dir), as the user the directory belongs to when that
// is the user mtrace works for; under NAME.mtrace-RANDOM when its name is
// taken by a file mtrace may not replace; encrypted to the file's
// recipients; within its size limit; and, once written, with the older
// reports of its directory pruned to the number it keeps. A report without
// a file goes to a stream instead (StreamOutput).
type Output struct {
	file   policy.File
	dir    *Dir      // nil for a stream
	name   string    // the file's name in dir
	stream io.Writer // where a stream output goes
}

// OpenOutput opens the directory of f's file and checks the file, so that a
// run refuses an output it may not write before it traces anything: every
// file of a run is opened so, and written through what it returns. user is
// the user mtrace works for, as for OpenDir.
func OpenOutput(f policy.File, user *syscall.Credential) (*Output, error) {
	dir, name, err := f.Place()
	if err != nil {
		return nil, err
	}
	d, err := OpenDir(dir, user)
	if err != nil {
		return nil, err
	}
	if err := d.Check(name); err != nil {
		d.Close()
		return nil, err
	}
	return &Output{file: f, dir: d, name: name}, nil
}

// StreamOutput is an output to w, stdout, within f's size limit. Since
// what reaches a stream cannot be taken back, nothing is written to it
// unless all of it fits.
func StreamOutput(w io.Writer, f policy.File) *Output {
	return &Output{file: f, stream: w}
}

// Write writes the output with write, atomically for a file (Dir.WriteFile).
// Writing more than the size limit fails with ErrTooLarge, and a file
// keeps what it held before.
func (o *Output) Write(write func(io.Writer) error) error {
	limited := Limited(o.file.MaxBytes, write)
	if o.dir == nil {
		if err := o.Fits(write); err != nil {
			return err
		}
		return limited(o.stream)
	}
	return o.dir.WriteFile(o.name, Encrypted(o.file.Recipients, limited))
}

// Fits returns ErrTooLarge if write writes more than the size limit, and
// writes nothing.
func (o *Output) Fits(write func(io.Writer) error) error {
	return Limited(o.file.MaxBytes, write)(io.Discard)
}

// Prune removes the older reports of the file's directory, keeping as many
// as its rule says, if it says any, and never the file itself (Dir.Prune).
func (o *Output) Prune() error {
	if o.dir == nil || o.file.Keep <= 0 {
		return nil
	}
	return o.dir.Prune(o.file.Keep, o.name)
}

// Path is where the file goes, for messages; "" for a stream.
func (o *Output) Path() string {
	if o.dir == nil {
		return ""
	}
	return filepath.Join(o.dir.Path(), o.name)
}

// Encrypted reports whether the output is encrypted.
func (o *Output) Encrypted() bool { return len(o.file.Recipients) > 0 }

// SwitchesUser reports whether the file, if any, is written as another
// user than mtrace's own (Dir.SwitchesUser); false for nil.
func (o *Output) SwitchesUser() bool { return o != nil && o.dir != nil && o.dir.SwitchesUser() }

// Close releases the file's directory; it is safe to call twice and on nil.
func (o *Output) Close() error {
	if o == nil {
		return nil
	}
	return o.dir.Close()
}
