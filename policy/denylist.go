package policy

// DefaultDenylist names the executables that hold secrets in their heap and
// are never traced unless a policy turns the list off: agents, key rings,
// password managers, login and privilege programs. Patterns without a "/"
// match the executable's base name.
var DefaultDenylist = []string{
	"ssh-agent", "sshd", "sshd-session", "gpg-agent", "scdaemon", "pinentry*",
	"gnome-keyring-daemon", "kwalletd5", "kwalletd6", "keepassxc", "KeePassXC",
	"1password", "bitwarden", "vault", "sudo", "su", "login", "passwd",
}
