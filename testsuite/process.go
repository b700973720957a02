package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// logBuffer keeps a server's output for printing when a test fails, and mirrors it to a file in
// the bed's log folder when one is set.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
}

func newLogBuffer(dir, name string) (*logBuffer, error) {
	l := &logBuffer{}
	if dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return nil, err
		}
		l.file = f
	}
	return l, nil
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_ = l.file.Close()
	}
}

// process is a server child process. It is put in its own process group so that stopping it also
// stops anything it spawned.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
	err  error
}

func startProcess(name string, log *logBuffer, bin string, args ...string) (*process, error) {
	return startProcessEnv(name, log, log, nil, bin, args...)
}

// startProcessEnv starts a process with exactly the environment env (nil: this process's),
// its output going to out, which includes log.
func startProcessEnv(name string, log *logBuffer, out io.Writer, env []string, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports a process that died before it became healthy.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early (%v); its log:\n%s", p.name, p.err, p.log.String())
	default:
		return nil
	}
}

// stop asks the process group to terminate, then kills it after a grace period.
func (p *process) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// freePort asks the kernel for a free loopback port.
// freePort picks a free loopback port for a server the bed starts, at random below Linux's
// ephemeral range (32768–60999). A port from the ephemeral range (what listening on :0 returns) can
// be handed to an outgoing connection or to another server's :0 before the server we start binds
// it; on a busy machine that happened (the Temporal dev server then panics on "address already in
// use"). Below that range only other picks of this function compete, at random.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(10000)
		l, err := net.Listen("tcp", loopback(port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port between 20000 and 29999")
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitHTTP polls url until check accepts the answer, the process dies or ctx ends.
func waitHTTP(ctx context.Context, p *process, url string, check func(*http.Response) bool) error {
	client := &http.Client{Timeout: time.Second}
	for {
		if err := p.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			ok := check(resp)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s not healthy at %s", p.name, url), ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}
