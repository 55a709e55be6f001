package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestDocsLinks checks that every relative link in README.md and docs/
// names a file that exists and, with a #fragment, a heading in it, and that
// the README links every file in docs/: the manual moved there, and a link
// left pointing at a section that moved would fail silently on GitHub.
func TestDocsLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	files := append([]string{filepath.Join(root, "README.md")}, docs...)
	anchors := map[string]map[string]bool{}
	text := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text[f] = string(b)
		anchors[f] = headingAnchors(string(b))
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	linked := map[string]bool{}
	for _, f := range files {
		for _, m := range link.FindAllStringSubmatch(text[f], -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := f
			if file != "" {
				dest = filepath.Join(filepath.Dir(f), file)
			}
			linked[dest] = true
			have, ok := anchors[dest]
			if !ok {
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: %v", f, target, err)
				}
				continue
			}
			if frag != "" && !have[frag] {
				t.Errorf("%s: link %s: no such heading", f, target)
			}
		}
	}
	for _, d := range docs {
		if !linked[d] {
			t.Errorf("%s is linked from nowhere", d)
		}
	}
	// .ci/run runs these two lines of the quick start as they are.
	for _, want := range []string{"sudo make demo", "sudo make test"} {
		if !strings.Contains(text[files[0]], "\n"+want+" ") {
			t.Errorf("README.md: quick start lacks %q", want)
		}
	}
}

// headingAnchors returns the fragments GitHub makes of a Markdown file's
// headings: lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
