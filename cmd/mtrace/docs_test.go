package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestManPage(t *testing.T) {
	res := runMtrace(t.Context(), nil, "man")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{".TH mtrace 1", "record", "--pid", "--policy", "report", "--diff-base"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
}

func TestCompletion(t *testing.T) {
	fish := runMtrace(t.Context(), nil, "completion", "fish")
	if fish.code != 0 || !strings.Contains(fish.stdout, "complete -c mtrace") || !strings.Contains(fish.stdout, "record") {
		t.Errorf("fish completion: exit %d\n%s", fish.code, fish.stdout)
	}
	bash := runMtrace(t.Context(), nil, "completion", "bash")
	if bash.code != 0 || !strings.Contains(bash.stdout, "complete -o default -F _mtrace_complete mtrace") {
		t.Errorf("bash completion: exit %d\n%s", bash.code, bash.stdout)
	}
	// The bash script asks mtrace for the words; they are its commands. (In a
	// process of its own: urfave/cli reads os.Args for this.)
	cmd := exec.Command(os.Args[0], "--generate-bash-completion")
	cmd.Env = append(os.Environ(), "MTRACE_TEST_MAIN=1")
	words, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"record", "report", "policy", "version"} {
		if !strings.Contains(string(words), cmd) {
			t.Errorf("completion words lack %s: %q", cmd, words)
		}
	}
	if bad := runMtrace(t.Context(), nil, "completion", "tcsh"); bad.code != exitUsage {
		t.Errorf("completion tcsh: exit %d", bad.code)
	}
}
