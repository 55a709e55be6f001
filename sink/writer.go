package sink

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// asWriter runs fn as d's writer: when that is another user than mtrace's
// own, on a thread of its own whose file system uid and gid (setfsuid,
// setfsgid) are the writer's while fn runs. So the files fn creates are
// the writer's, and the kernel checks every step against the writer's
// permissions: root without CAP_DAC_OVERRIDE, once mtrace has dropped it,
// could not write into a 0755 directory of the user who ran sudo. The
// thread's identity is restored and checked afterwards; a thread that
// cannot be restored ends with its goroutine, never serving another one.
// fn gets d's spare descriptor. Steps in d are not safe for concurrent use.
func (d *Dir) asWriter(fn func() error) error {
	d.release() // fn may need a descriptor: the spare one is its
	defer d.reserve()
	if !d.SwitchesUser() {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// setfsuid and setfsgid return the previous id, changed or not.
		gid, _ := unix.SetfsgidRetGid(d.gid)
		uid, _ := unix.SetfsuidRetUid(d.uid)
		err := checkFSID(d.uid, d.gid)
		if err == nil {
			err = fn()
		}
		unix.SetfsuidRetUid(uid)
		unix.SetfsgidRetGid(gid)
		if rerr := checkFSID(uid, gid); rerr != nil {
			done <- errors.Join(err, fmt.Errorf("restore file system ids: %w", rerr))
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// checkFSID fails unless the calling thread's file system uid and gid are
// uid and gid (they are left as they were without CAP_SETUID, CAP_SETGID).
func checkFSID(uid, gid int) error {
	// An invalid id (-1) changes nothing, and returns the current one.
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	if gotUID != uid || gotGID != gid {
		return fmt.Errorf("set file system uid %d, gid %d: they are %d, %d (CAP_SETUID and CAP_SETGID needed)", uid, gid, gotUID, gotGID)
	}
	return nil
}
