package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion completes mtrace's commands and flags in bash (and zsh
// through bashcompinit) by asking mtrace itself, urfave/cli's protocol.
const bashCompletion = `_mtrace_complete() {
	local cur opts
	cur="${COMP_WORDS[COMP_CWORD]}"
	opts=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" --generate-bash-completion 2>/dev/null)
	COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o default -F _mtrace_complete mtrace
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: `Examples:
   source <(mtrace completion bash)
   mtrace completion fish > ~/.config/fish/completions/mtrace.fish`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
				return err
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("make fish completion: %w", err)
				}
				_, err = fmt.Fprint(c.App.Writer, script)
				return err
			}
			return usagef("completion: give bash, zsh or fish")
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page, made from the command-line definition",
		Description: `Example:
   mtrace man > /usr/local/share/man/man1/mtrace.1`,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("make man page: %w", err)
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}
