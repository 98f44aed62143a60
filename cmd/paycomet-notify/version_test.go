package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/paycomet-notify/paycomet-notify", Version: "v0.0.0-20261201110000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T11:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name                string
		ldVersion, ldCommit string
		ldDate              string
		info                *debug.BuildInfo
		want                []string // lines of the output
	}{
		{
			name: "ldflags win over build info", ldVersion: "v1.4.0", ldCommit: "abc1234", ldDate: "2026-12-01T12:00:00Z", info: stamped,
			want: []string{"paycomet-notify v1.4.0", "commit: abc1234", "built: 2026-12-01T12:00:00Z", "go: go1.26.8 " + platform},
		},
		{
			name: "plain go build in a clone: build info only", ldVersion: "dev", info: stamped,
			want: []string{
				"paycomet-notify v0.0.0-20261201110000-0123456789ab+dirty",
				"commit: 0123456789abcdef0123456789abcdef01234567 (modified)",
				"built: unknown (commit time 2026-12-01T11:00:00Z)",
				"go: go1.26.8 " + platform,
			},
		},
		{
			name: "no vcs information", ldVersion: "dev", info: devel,
			want: []string{"paycomet-notify dev", "commit: unknown", "built: unknown", "go: go1.26.8 " + platform},
		},
		{
			name: "no build info at all", ldVersion: "dev", info: nil,
			want: []string{"paycomet-notify dev", "commit: unknown", "built: unknown", "go: " + runtime.Version() + " " + platform},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldV, oldC, oldD := version, commit, date
			t.Cleanup(func() { version, commit, date = oldV, oldC, oldD })
			version, commit, date = tt.ldVersion, tt.ldCommit, tt.ldDate
			var out bytes.Buffer
			readBuildInfo(func() (*debug.BuildInfo, bool) { return tt.info, tt.info != nil }).write(&out)
			if got, want := out.String(), strings.Join(tt.want, "\n")+"\n"; got != want {
				t.Errorf("version output =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestVersionCommand runs the subcommand end to end; deploy/deploy_test.go
// checks the -ldflags of the image build reach it.
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{arg}, nil, nil, &out, &errOut); code != 0 {
			t.Fatalf("run(%s) = %d, stderr %q", arg, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "paycomet-notify ") ||
			!strings.HasPrefix(lines[1], "commit: ") || !strings.HasPrefix(lines[2], "built: ") ||
			lines[3] != "go: "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH {
			t.Errorf("run(%s) printed %q, want name+version, commit, built and go lines", arg, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, nil, nil, &out, &errOut); code != 1 || out.Len() != 0 {
		t.Errorf("run(version extra) = %d, stdout %q; want 1 and nothing printed", code, out.String())
	}
}
