package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadValidPolicy(t *testing.T) {
	p, err := Load(writePolicy(t, `
[scope]
allow_executables = ["/opt/app/bin/*", "python3*"]
deny_users = ["nobody"]
allow_cgroups = ["/system.slice"]

[limits]
max_live = 1000
max_duration = "30m"

[output]
directory = "/var/lib/mtrace"
retention = 5
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Limits.MaxLive != 1000 || p.Limits.MaxDuration != 30*time.Minute || p.Limits.RingBufferBytes != DefaultLimits().RingBufferBytes {
		t.Errorf("limits %+v: set fields must change, others keep their defaults", p.Limits)
	}
	ok := Target{Pid: 1, Exe: "/opt/app/bin/server", UIDs: OneUID(1000), Cgroup: "/system.slice/app.service"}
	if err := p.Check(ok); err != nil {
		t.Errorf("allowed target refused: %v", err)
	}
	for _, tc := range []struct {
		target Target
		rule   string
	}{
		{Target{Exe: "/usr/bin/ssh-agent", Cgroup: "/system.slice/x"}, `built-in deny list "ssh-agent"`},
		{Target{Exe: "/usr/bin/bash", Cgroup: "/system.slice/x"}, "not in scope.allow_executables"},
		{Target{Exe: "/opt/app/bin/server", UIDs: OneUID(65534), Cgroup: "/system.slice/x"}, `scope.deny_users "nobody"`},
		{Target{Exe: "/opt/app/bin/server", UIDs: UIDs{1000, 1000, 65534, 1000}, Cgroup: "/system.slice/x"}, `saved uid 65534, which matches scope.deny_users "nobody"`},
		{Target{Exe: "/opt/app/bin/server", Cgroup: "/user.slice/x"}, "not in scope.allow_cgroups"},
	} {
		err := p.Check(tc.target)
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("%+v: error %v, want a refusal by %s", tc.target, err, tc.rule)
		}
	}
}

func TestDefaultPolicyDeniesSecretHolders(t *testing.T) {
	p := Default()
	for _, exe := range []string{"/usr/bin/ssh-agent", "/usr/sbin/sshd", "/usr/bin/gpg-agent", "/usr/bin/pinentry-curses",
		"/usr/lib/openssh/sshd-auth", "/usr/lib/openssh/sshd-session", "/usr/sbin/unix_chkpwd", "/usr/bin/ssh", "/usr/bin/ssh-add",
		"/usr/bin/pkexec", "/usr/lib/polkit-1/polkit-agent-helper-1", "/usr/local/bin/bw", "/usr/bin/op", "/usr/bin/keepassxc-cli",
		"/opt/1Password/1password"} {
		if err := p.Check(Target{Exe: exe}); !errors.Is(err, ErrDenied) {
			t.Errorf("%s allowed by default: %v", exe, err)
		}
	}
	if err := p.Check(Target{Exe: "/usr/bin/python3"}); err != nil {
		t.Errorf("python3 refused by default: %v", err)
	}
	off := false
	p.Scope.DefaultDenylist = &off
	if err := p.Check(Target{Exe: "/usr/bin/ssh-agent"}); err != nil {
		t.Errorf("deny list off, still refused: %v", err)
	}
}

// TestUnreadableTargetsAreDenied: a process whose executable, user or
// cgroup cannot be read (it exited, or its leader did) cannot be shown not
// to match a deny rule, so it is refused while one is in force.
func TestUnreadableTargetsAreDenied(t *testing.T) {
	off := false
	for _, tc := range []struct {
		scope  Scope
		target Target
		denied bool
	}{
		{Scope{}, Target{Pid: 7, UIDs: OneUID(1000), Cgroup: "/a"}, true}, // the built-in deny list is in force
		{Scope{DefaultDenylist: &off}, Target{Pid: 7, UIDs: OneUID(1000), Cgroup: "/a"}, false},
		{Scope{DefaultDenylist: &off, DenyCgroups: []string{"/b"}}, Target{Pid: 7, UIDs: OneUID(1000), Cgroup: "/a"}, true},
		{Scope{DefaultDenylist: &off, DenyUsers: []string{"root"}}, Target{Pid: 7, Exe: "/bin/x", UIDs: OneUID(-1), Cgroup: "/a"}, true},
		{Scope{DenyExecutables: []string{"y"}}, Target{Pid: 7, Exe: "/bin/x", UIDs: OneUID(-1), Cgroup: "/a"}, false},
		{Scope{DenyCgroups: []string{"/b"}}, Target{Pid: 7, Exe: "/bin/x", UIDs: OneUID(1000)}, true},
		{Scope{DenyUsers: []string{"root"}}, Target{Pid: 7, Exe: "/bin/x", UIDs: OneUID(1000)}, false},
	} {
		p := Default()
		p.Scope = tc.scope
		err := p.Check(tc.target)
		if tc.denied != errors.Is(err, ErrDenied) || (tc.denied && !strings.Contains(err.Error(), "cannot be read")) {
			t.Errorf("scope %+v, target %+v: error %v, want denied %v", tc.scope, tc.target, err, tc.denied)
		}
	}
}

// TestLoadRejectsMalformedPolicies wants every mistake named by line and field.
func TestLoadRejectsMalformedPolicies(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[scope]\nallow_executables = [\"a\"\n", "line"},
		{"[scope]\n\nalow_users = [\"root\"]\n", "line 3: unknown field scope.alow_users"},
		{"[limits]\nring_buffer_bytes = 1000\n", "line 2: limits.ring_buffer_bytes 1000"},
		{"[limits]\nmax_live = \"many\"\n", "line 2"},
		{"[output]\nencrypt_to = [\"not-a-key\"]\n", "line 2: output.encrypt_to"},
		{"[output]\ndirectory = \"relative\"\n", "line 2: output.directory"},
		{"[scope]\ndeny_cgroups = [\"[\"]\n", "line 2: scope.deny_cgroups"},
	} {
		_, err := Load(writePolicy(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
}
