package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of mtrace and what it was built with",
		Action: func(c *cli.Context) error {
			ebpfVersion := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, d := range info.Deps {
					if d.Path == "github.com/cilium/ebpf" {
						ebpfVersion = d.Version
					}
				}
			}
			_, err := fmt.Fprintf(c.App.Writer, "mtrace %s (%s, cilium/ebpf %s, %s/%s)\n",
				version, runtime.Version(), ebpfVersion, runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
