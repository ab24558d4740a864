package raid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"pbxha/lib/plugin"
)

// maxToolOutput bounds what is read from tw_cli: a 128-port controller
// prints a few kilobytes.
const maxToolOutput = 1 << 20

// twRunner runs tw_cli with arguments and returns its standard output.
type twRunner func(ctx context.Context, args ...string) ([]byte, error)

// findTool resolves --tw-cli: a name is looked up on PATH, a path must be
// an executable file.
func findTool(name string) (string, error) {
	if !strings.Contains(name, "/") {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s not found on PATH (give its path with --tw-cli)", name)
		}
		return p, nil
	}
	fi, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: %w", name, errors.Unwrap(err))
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", name)
	}
	return name, nil
}

// toolRunner runs the program at path. tw_cli can hang on a wedged
// controller; it runs in its own process group, which is killed as a whole
// when ctx ends, so neither it nor anything it started outlives the check.
func toolRunner(path string) twRunner {
	return func(ctx context.Context, args ...string) ([]byte, error) {
		what := filepath.Base(path) + " " + strings.Join(args, " ")
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		// a grandchild that inherited stdout would otherwise keep Wait
		// waiting for the pipe to close
		cmd.WaitDelay = 500 * time.Millisecond
		stdout := &capBuffer{max: maxToolOutput}
		stderr := &capBuffer{max: 4096}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if err != nil {
			msg := firstLine(stderr.String())
			if msg == "" {
				msg = firstLine(stdout.String())
			}
			if msg != "" {
				return nil, fmt.Errorf("%s: %v: %s", what, err, plugin.Clean(msg, 120))
			}
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		if stdout.over {
			return nil, fmt.Errorf("%s: more than %d bytes of output", what, maxToolOutput)
		}
		return stdout.Bytes(), nil
	}
}

// capBuffer keeps the first max bytes written to it and drops the rest.
// The buffer is a field, not embedded: an embedded bytes.Buffer would lend
// capBuffer its ReadFrom, which io.Copy prefers to Write.
type capBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (c *capBuffer) String() string { return c.buf.String() }
func (c *capBuffer) Bytes() []byte  { return c.buf.Bytes() }

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// collectTW asks tw_cli for everything the policy needs. Per controller,
// `info cN` prints the unit, drive and BBU tables at once; the
// `unitstatus`, `drivestatus` and `bbustatus` sub-commands fill whatever it
// did not print. The returned show is nil when `show` itself failed.
func collectTW(ctx context.Context, env *plugin.Env, run twRunner) (*TWShow, TWData, []byte, error) {
	var d TWData
	env.Step("running tw_cli show")
	out, err := run(ctx, "show")
	if err != nil {
		return nil, d, nil, err
	}
	show := ParseTWShow(string(out))
	for _, c := range show.Controllers {
		if ctx.Err() != nil {
			return &show, d, out, ctx.Err()
		}
		cd := TWControllerData{TWController: c}
		env.Step("running tw_cli info %s", c.ID)
		if b, err := run(ctx, "info", c.ID); err == nil {
			cd.Info = ParseTWInfo(string(b))
		} else {
			env.Debugf(1, "%v; asking for each table", err)
		}
		if !cd.Info.HasUnits {
			in, err := twPart(ctx, env, run, c.ID, "unitstatus")
			cd.Info.Units, cd.UnitsErr = in.Units, err
		}
		if !cd.Info.HasDrives && cd.UnitsErr == nil {
			in, err := twPart(ctx, env, run, c.ID, "drivestatus")
			cd.Info.Drives, cd.DrivesErr = in.Drives, err
		}
		if cd.Info.BBU == nil && c.HasBBU() && cd.UnitsErr == nil {
			in, err := twPart(ctx, env, run, c.ID, "bbustatus")
			cd.Info.BBU, cd.BBUErr = in.BBU, err
		}
		d.Controllers = append(d.Controllers, cd)
	}
	for _, id := range show.Enclosures {
		if ctx.Err() != nil {
			return &show, d, out, ctx.Err()
		}
		env.Step("running tw_cli %s show all", id)
		e := TWEnclosureData{ID: id}
		b, err := run(ctx, id, "show", "all")
		if err != nil {
			e.Err = err
		} else {
			e.Items = ParseTWEnclosure(string(b))
		}
		d.Enclosures = append(d.Enclosures, e)
	}
	return &show, d, out, nil
}

// twPart runs `info cN <part>` and checks that the table it is for came.
func twPart(ctx context.Context, env *plugin.Env, run twRunner, ctl, part string) (TWInfo, error) {
	env.Step("running tw_cli info %s %s", ctl, part)
	b, err := run(ctx, "info", ctl, part)
	if err != nil {
		return TWInfo{}, err
	}
	in := ParseTWInfo(string(b))
	ok := map[string]bool{"unitstatus": in.HasUnits, "drivestatus": in.HasDrives, "bbustatus": in.BBU != nil}[part]
	if !ok {
		return in, fmt.Errorf("tw_cli info %s %s: no table in its output %q", ctl, part, plugin.Clean(firstLine(string(b)), 60))
	}
	return in, nil
}
