package policy

// DefaultDenylist names the executables that hold secrets in their heap and
// are never traced unless a policy turns the list off: SSH and GnuPG
// programs and agents, key rings, password managers and their command-line
// clients, login, authentication and privilege programs. Patterns without a
// "/" match the executable's base name, so a renamed copy is not covered.
var DefaultDenylist = []string{
	"ssh", "ssh-agent", "ssh-add", "ssh-keygen", "sshd", "sshd-session", "sshd-auth",
	"gpg", "gpg2", "gpg-agent", "scdaemon", "pinentry*",
	"gnome-keyring-daemon", "kwalletd5", "kwalletd6",
	"keepassxc", "KeePassXC", "keepassxc-cli", "keepassxc-proxy",
	"1password", "op", "bitwarden", "bw", "rbw-agent", "vault",
	"sudo", "su", "doas", "pkexec", "polkitd", "polkit-agent-helper-1",
	"login", "passwd", "unix_chkpwd",
}
