package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// commandUser returns who a traced command runs as: the user named (or
// numbered) by --user, else the user who ran mtrace through sudo, so that
// the command never runs with mtrace's privileges; nil (mtrace's own user)
// when neither is given.
func commandUser(name string) (*syscall.Credential, error) {
	if name == "" {
		name = os.Getenv("SUDO_UID")
		if name == "" {
			return nil, nil
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("user %s: no such user", name)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q", name, u.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %s: groups: %w", name, err)
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	return cred, nil
}
