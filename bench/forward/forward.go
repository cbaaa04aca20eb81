// Package forward measures what it costs a Socket.IO long-polling session to
// be served without sticky sessions: a poll cycle (a POST carrying an
// operation and the GET that carries its answer) sent to the node that holds
// the session, against the same cycle sent to another node, which forwards
// both requests to the holder (docs/cluster.md, "No sticky sessions"). It
// runs `ecb demo --nodes 2` on a Redis, alternates direct and forwarded
// cycles on one session so that both see the same machine load, and prints
// one JSON line.
package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
)

// Config tunes a run.
type Config struct {
	// ECB is the ecb binary (`ecb demo --nodes 2` is run with it).
	ECB string
	// RedisURL is the Redis the two nodes share.
	RedisURL string
	// Cycles is how many cycles of each kind are measured (after as many
	// warm-up cycles, at most 200).
	Cycles int
}

// Result is the JSON line.
type Result struct {
	Benchmark string  `json:"benchmark"`
	Cycles    int     `json:"cycles"`
	DirectP50 float64 `json:"direct_p50_us"`
	DirectP99 float64 `json:"direct_p99_us"`
	ViaP50    float64 `json:"forwarded_p50_us"`
	ViaP99    float64 `json:"forwarded_p99_us"`
	// AddedP50 is forwarded minus direct at the median: the cost of the two
	// extra hops of a cycle.
	AddedP50 float64 `json:"added_p50_us"`
	RatioP50 float64 `json:"ratio_p50"`
	Load     string  `json:"loadavg"`
}

// Run measures and writes the Result to out.
func Run(ctx context.Context, cfg Config, out io.Writer, log io.Writer) error {
	if cfg.Cycles <= 0 {
		cfg.Cycles = 2000
	}
	dir, err := os.MkdirTemp("", "ecb-bench-forward-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prefix := "bench-fwd-" + randomHex(4)
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	defer func() { // after the demo has stopped (deferred below)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cluster.DeletePrefix(dctx, rdb, prefix)
	}()
	cmd := exec.CommandContext(ctx, cfg.ECB, "demo", "--nodes", "2", "--listen", "127.0.0.1:0", "--data", dir,
		"--redis", cfg.RedisURL, "--set", "cluster.prefix="+prefix,
		"--set", "limits.opsPerSecondPerConnection=100000", "--set", "limits.opsBurstPerConnection=100000",
		"--set", "limits.opsPerSecondPerUser=100000", "--set", "limits.opsBurstPerUser=100000")
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the demo: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	if err := awaitLine(stdout, "ECB demo ready", time.Minute); err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	var file struct {
		Backend string
		Nodes   []struct{ URL string }
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &file); err != nil || len(file.Nodes) != 2 {
		return fmt.Errorf("cluster.json: %v", err)
	}
	owner, other := file.Nodes[0].URL, file.Nodes[1].URL
	token, err := login(ctx, file.Backend, owner, "alice")
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	path, err := openSession(ctx, hc, owner, token)
	if err != nil {
		return err
	}
	var direct, via []time.Duration
	warm := min(cfg.Cycles, 200)
	for i := range warm + cfg.Cycles {
		for _, base := range []string{owner, other} {
			d, err := cycle(ctx, hc, base+path, i)
			if err != nil {
				return fmt.Errorf("cycle %d through %s: %w", i, base, err)
			}
			if i < warm {
				continue
			}
			if base == owner {
				direct = append(direct, d)
			} else {
				via = append(via, d)
			}
		}
	}
	r := Result{Benchmark: "forward", Cycles: cfg.Cycles, Load: loadAvg()}
	r.DirectP50, r.DirectP99 = quantile(direct, 0.5), quantile(direct, 0.99)
	r.ViaP50, r.ViaP99 = quantile(via, 0.5), quantile(via, 0.99)
	r.AddedP50 = r.ViaP50 - r.DirectP50
	if r.DirectP50 > 0 {
		r.RatioP50 = float64(int(r.ViaP50/r.DirectP50*100+0.5)) / 100
	}
	return json.NewEncoder(out).Encode(r)
}

// cycle posts an operation the node answers itself (an unknown one: the
// answer is not_found, no backend call) and reads its answer with a GET.
func cycle(ctx context.Context, hc *http.Client, url string, id int) (time.Duration, error) {
	start := time.Now()
	body := fmt.Sprintf(`42%d["bench.none",{}]`, id)
	if _, err := do(ctx, hc, http.MethodPost, url, body); err != nil {
		return 0, err
	}
	want := fmt.Sprintf("43%d[", id)
	for {
		got, err := do(ctx, hc, http.MethodGet, url, "")
		if err != nil {
			return 0, err
		}
		for _, p := range strings.Split(got, "\x1e") {
			switch {
			case p == "2": // a ping: answer, keep reading
				if _, err := do(ctx, hc, http.MethodPost, url, "3"); err != nil {
					return 0, err
				}
			case strings.HasPrefix(p, want):
				return time.Since(start), nil
			}
		}
	}
}

func do(ctx context.Context, hc *http.Client, method, url, body string) (string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", method, resp.StatusCode, raw)
	}
	return string(raw), err
}

// openSession opens an Engine.IO polling session on base and connects the
// default namespace with token; it returns the session's path and query.
func openSession(ctx context.Context, hc *http.Client, base, token string) (string, error) {
	got, err := do(ctx, hc, http.MethodGet, base+"/socket.io/?EIO=4&transport=polling", "")
	if err != nil {
		return "", err
	}
	var open struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(got, "0") || json.Unmarshal([]byte(strings.Split(got, "\x1e")[0][1:]), &open) != nil {
		return "", fmt.Errorf("handshake answered %q", got)
	}
	path := "/socket.io/?EIO=4&transport=polling&sid=" + open.SID
	auth, _ := json.Marshal(map[string]string{"userToken": token})
	if _, err := do(ctx, hc, http.MethodPost, base+path, "40"+string(auth)); err != nil {
		return "", err
	}
	for {
		got, err := do(ctx, hc, http.MethodGet, base+path, "")
		if err != nil {
			return "", err
		}
		if strings.Contains(got, "40{") {
			return path, nil
		}
		if strings.Contains(got, "44") {
			return "", fmt.Errorf("connect refused: %s", got)
		}
	}
}

func login(ctx context.Context, backend, ecb, user string) (string, error) {
	post := func(url string, in, out any) error {
		raw, _ := json.Marshal(in)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var lr struct {
		AccessToken string `json:"accessToken"`
	}
	if err := post(backend+"/login", map[string]string{"username": user, "password": user}, &lr); err != nil {
		return "", fmt.Errorf("backend login: %w", err)
	}
	var tr struct {
		Data struct {
			UserToken string `json:"userToken"`
		} `json:"data"`
	}
	if err := post(ecb+"/v1/token", map[string]string{"accessToken": lr.AccessToken}, &tr); err != nil || tr.Data.UserToken == "" {
		return "", fmt.Errorf("getUserToken: %v", err)
	}
	return tr.Data.UserToken, nil
}

func awaitLine(r io.Reader, prefix string, within time.Duration) error {
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			return errors.New("the demo exited before it was ready")
		}
		return nil
	case <-time.After(within):
		return fmt.Errorf("the demo was not ready within %s", within)
	}
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds())
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
