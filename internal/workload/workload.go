package workload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Run runs a command that runs the workload (or the workload itself),
// lets ready (if not nil) do its work on the workload's pid once it said
// "ready", then starts the workload and returns its ns per op.
func Run(ctx context.Context, argv []string, ready func(pid int) error) (float64, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	ns, err := drive(out, in, cmd.Process.Pid, ready)
	in.Close()
	io.Copy(io.Discard, out)
	if werr := cmd.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), werr, LastLine(stderr.String())))
	}
	return ns, err
}

var nsPerOp = regexp.MustCompile(`^ns_per_op=([0-9.]+)$`)

func drive(out io.Reader, in io.Writer, pid int, ready func(pid int) error) (float64, error) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "ready" {
			if ready != nil {
				if err := ready(pid); err != nil {
					return 0, err
				}
			}
			if _, err := io.WriteString(in, "go\n"); err != nil {
				return 0, err
			}
		}
		if m := nsPerOp.FindStringSubmatch(line); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, errors.New("the workload ended without saying ns_per_op")
}

// LastLine is the last line of s, the one-line error of a command that failed.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
