package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time, as the Makefile's build target and deploy/Dockerfile do:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// Whatever is left unset is taken from the build information the Go
// toolchain embeds (the module version, vcs.revision, vcs.time), so a plain
// `go build` in a clone still says which commit it is.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo is what `version` prints.
type buildInfo struct {
	Version   string
	Commit    string
	Modified  bool   // built from a work tree with uncommitted changes
	Date      string // build date (-ldflags), else empty
	VCSTime   string // the commit's time from the build information
	GoVersion string
	Platform  string
}

// readBuildInfo merges the -ldflags variables with the toolchain's build
// information (read is debug.ReadBuildInfo; tests pass their own). The
// -ldflags values win: an image build has no .git to stamp from.
func readBuildInfo(read func() (*debug.BuildInfo, bool)) buildInfo {
	b := buildInfo{
		Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := read()
	if !ok || bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	// vcs.modified describes vcs.revision only: with a commit given by
	// -ldflags, the version string says whether the tree was dirty
	// (git describe --dirty).
	fromVCS := b.Commit == ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if fromVCS {
				b.Commit = s.Value
			}
		case "vcs.time":
			b.VCSTime = s.Value
		case "vcs.modified":
			b.Modified = fromVCS && s.Value == "true"
		}
	}
	return b
}

// write prints b as `version` does: the first line is the name and
// version, then one "key: value" line each, so a person and a script read it.
func (b buildInfo) write(w io.Writer) {
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	c := unknown(b.Commit)
	if b.Modified {
		c += " (modified)"
	}
	d := b.Date
	if d == "" && b.VCSTime != "" {
		d = "unknown (commit time " + b.VCSTime + ")"
	}
	fmt.Fprintf(w, "paycomet-notify %s\ncommit: %s\nbuilt: %s\ngo: %s %s\n",
		b.Version, c, unknown(d), b.GoVersion, b.Platform)
}

// runVersion is `paycomet-notify version`.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "paycomet-notify version: takes no arguments, got %q\n", args)
		return 1
	}
	readBuildInfo(debug.ReadBuildInfo).write(stdout)
	return 0
}
