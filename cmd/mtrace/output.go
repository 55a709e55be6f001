package main

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
)

// output is a file mtrace writes: its directory, opened before tracing
// starts and held until the end, and its name there.
type output struct {
	dir  *sink.Dir
	name string
}

// openOutput opens the directory of the file f and checks the file, under
// the policy's rule (policy.File.Place). Every output of a run goes through it.
func openOutput(f policy.File) (*output, error) {
	dir, name, err := f.Place()
	if err != nil {
		return nil, err
	}
	d, err := sink.OpenDir(dir, invokingUser())
	if err != nil {
		return nil, err
	}
	o := &output{dir: d, name: name}
	if err := d.Check(o.name); err != nil {
		d.Close()
		return nil, err
	}
	return o, nil
}

// path is where the file goes, for messages.
func (o *output) path() string { return filepath.Join(o.dir.Path(), o.name) }

// switchesUser reports whether mtrace writes o, if any, as another user.
func (o *output) switchesUser() bool { return o != nil && o.dir.SwitchesUser() }

// invokingUser is the user who ran mtrace through sudo, with the group a
// command of theirs gets, whose directories mtrace may write into as them;
// or nil.
func invokingUser() *syscall.Credential {
	u, err := sudoUser()
	if err != nil || u == nil {
		return nil
	}
	cred, err := credential(u, os.Getenv("SUDO_GID"))
	if err != nil {
		return nil
	}
	return cred
}
