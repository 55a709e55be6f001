package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// commandUser returns who a traced command runs as: the user named (or
// numbered) by --user; else, when root runs mtrace, the user who ran it
// through sudo (SUDO_UID, unless that is root) or nobody, so that only
// --user root runs a command as root; else mtrace's own real user.
func commandUser(name string) (*syscall.Credential, error) {
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			if u, err = user.LookupId(name); err != nil {
				return nil, fmt.Errorf("user %s: no such user", name)
			}
		}
		return credential(u, "")
	}
	if os.Getuid() != 0 {
		// Not root: SUDO_UID is whatever the caller set. Its own user, as it is.
		return &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}, nil
	}
	if u, err := sudoUser(); err != nil || u != nil {
		if err != nil {
			return nil, err
		}
		return credential(u, os.Getenv("SUDO_GID"))
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, errors.New("no user nobody to run the command as: give --user USER (--user root runs it as root)")
	}
	return credential(u, "")
}

// sudoUser returns the user who ran root's mtrace through sudo (SUDO_UID),
// or nil when there is none, it is root, or mtrace is not run by root (then
// SUDO_UID is whatever the caller set).
func sudoUser() (*user.User, error) {
	id := os.Getenv("SUDO_UID")
	if os.Getuid() != 0 || id == "" || id == "0" {
		return nil, nil
	}
	if _, err := strconv.ParseUint(id, 10, 32); err != nil {
		return nil, fmt.Errorf("SUDO_UID %q: not a uid; give --user USER", id)
	}
	u, err := user.LookupId(id)
	if err != nil {
		return nil, fmt.Errorf("SUDO_UID %s: no such user; give --user USER", id)
	}
	return u, nil
}

// credential is u's uid, primary group and supplementary groups; gid, if
// one of them (SUDO_GID: the group sudo was run with), is the primary group.
func credential(u *user.User, gid string) (*syscall.Credential, error) {
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %s: groups: %w", u.Username, err)
	}
	if !slices.Contains(ids, gid) {
		gid = u.Gid
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", u.Username, u.Uid)
	}
	g, err := strconv.ParseUint(gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q", u.Username, gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(g)}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	return cred, nil
}

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
