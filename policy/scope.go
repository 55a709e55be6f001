package policy

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrDenied means the policy does not allow tracing a process.
var ErrDenied = errors.New("denied by policy")

// Target is what the policy judges a process by. An attribute mtrace could
// not read is the zero string, or a UID below 0.
type Target struct {
	Pid    int
	Exe    string
	UIDs   UIDs
	Cgroup string
}

// UIDs are a process's real, effective, saved set-user-ID and filesystem
// uids, each below 0 where unknown. A set-user-ID program holds its
// owner's uid, and secrets, in one of them whoever started it, even after
// it set its effective uid back to its caller's.
type UIDs [4]int

// uidNames name the uids of UIDs, in order.
var uidNames = [len(UIDs{})]string{"real", "effective", "saved", "filesystem"}

// OneUID is the uids of a process that runs as uid alone; uid below 0 is unknown.
func OneUID(uid int) UIDs { return UIDs{uid, uid, uid, uid} }

// known reports whether every uid was read.
func (u UIDs) known() bool {
	for _, uid := range u {
		if uid < 0 {
			return false
		}
	}
	return true
}

// Check returns nil if the policy allows tracing t, else an error that wraps
// ErrDenied and names the rule that refuses it. A target whose executable
// cannot be read is refused while any deny rule is in force (the built-in
// deny list counts), one whose user or cgroup cannot be read while a deny
// rule on users or cgroups is: a deny rule cannot be known not to match it.
func (p *Policy) Check(t Target) error {
	who := t.Exe
	if t.Pid != 0 {
		who = fmt.Sprintf("pid %d (%s)", t.Pid, t.Exe)
	}
	denied := func(rule, pattern string) error {
		return fmt.Errorf("%w: %s matches %s %q", ErrDenied, who, rule, pattern)
	}
	outside := func(rule string) error {
		return fmt.Errorf("%w: %s is not in %s", ErrDenied, who, rule)
	}
	unknown := func(what string) error {
		return fmt.Errorf("%w: %s: its %s cannot be read and deny rules are in force", ErrDenied, who, what)
	}
	s := p.Scope
	defaultList := s.defaultList()
	switch {
	case t.Exe == "" && (defaultList || len(s.DenyExecutables)+len(s.DenyUsers)+len(s.DenyCgroups) > 0):
		return unknown("executable")
	case !t.UIDs.known() && len(s.DenyUsers) > 0:
		return unknown("user")
	case t.Cgroup == "" && len(s.DenyCgroups) > 0:
		return unknown("cgroup")
	}
	if defaultList {
		if pat, ok := matchExe(DefaultDenylist, t.Exe); ok {
			return denied("the built-in deny list", pat)
		}
	}
	if pat, ok := matchExe(s.DenyExecutables, t.Exe); ok {
		return denied("scope.deny_executables", pat)
	}
	// A user is denied by any of the process's uids, allowed only by all of them.
	for i, uid := range t.UIDs {
		if u, ok := matchUser(s.DenyUsers, uid); ok {
			return fmt.Errorf("%w: %s has %s uid %d, which matches scope.deny_users %q", ErrDenied, who, uidNames[i], uid, u)
		}
	}
	if pat, ok := matchPath(s.DenyCgroups, t.Cgroup); ok {
		return denied("scope.deny_cgroups", pat)
	}
	if _, ok := matchExe(s.AllowExecutables, t.Exe); len(s.AllowExecutables) > 0 && !ok {
		return outside("scope.allow_executables")
	}
	for i, uid := range t.UIDs {
		if _, ok := matchUser(s.AllowUsers, uid); len(s.AllowUsers) > 0 && !ok {
			return fmt.Errorf("%w: %s has %s uid %d, which is not in scope.allow_users", ErrDenied, who, uidNames[i], uid)
		}
	}
	if _, ok := matchPath(s.AllowCgroups, t.Cgroup); len(s.AllowCgroups) > 0 && !ok {
		return outside("scope.allow_cgroups")
	}
	return nil
}

// MayDeny reports whether the policy may deny some process: the built-in
// deny list is on, or a deny or allow rule is set.
func (p *Policy) MayDeny() bool {
	s := p.Scope
	return s.defaultList() || len(s.DenyExecutables)+len(s.DenyUsers)+len(s.DenyCgroups)+
		len(s.AllowExecutables)+len(s.AllowUsers)+len(s.AllowCgroups) > 0
}

// defaultList reports whether the built-in deny list is in force (it is unless turned off).
func (s Scope) defaultList() bool { return s.DefaultDenylist == nil || *s.DefaultDenylist }

// matchExe matches an executable path: a pattern with a "/" against the
// whole path, one without against its base name.
func matchExe(patterns []string, exe string) (string, bool) {
	exe = strings.TrimSuffix(exe, " (deleted)")
	for _, pat := range patterns {
		name := exe
		if !strings.Contains(pat, "/") {
			name = filepath.Base(exe)
		}
		if ok, _ := filepath.Match(pat, name); ok {
			return pat, true
		}
	}
	return "", false
}

// matchPath matches a cgroup path, or any of its ancestors, against globs:
// a rule for a slice covers the units in it.
func matchPath(patterns []string, path string) (string, bool) {
	for _, pat := range patterns {
		for p := path; ; p = filepath.Dir(p) {
			if ok, _ := filepath.Match(pat, p); ok {
				return pat, true
			}
			if p == "/" || p == "." || p == "" {
				break
			}
		}
	}
	return "", false
}

// matchUser matches a uid against user names and numeric ids.
func matchUser(users []string, uid int) (string, bool) {
	if len(users) == 0 {
		return "", false // no user rules: no need to look the user up
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	for _, u := range users {
		if u == strconv.Itoa(uid) || (name != "" && u == name) {
			return u, true
		}
	}
	return "", false
}
