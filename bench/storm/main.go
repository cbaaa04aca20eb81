// Command storm is a load tool for a burst of reconnects (issue 14 item 4)
// and for the sendMessage ack at a light rate (item 3). It runs the
// reference backend in one process (itself, re-executed) and `ecb serve` in
// another, seeds distinct users in threads of --per-thread members, then
// opens --clients Socket.IO WebSockets spread evenly over --within, each as
// its own authenticated user doing getThreads then getThread (listening to
// its thread). Then one client sends --sends messages at --rate per second.
// It prints one JSON line: failures by code, the time until every client
// listened, and the sendMessage ack figures (client-measured, and ECB's own
// share from /metrics).
//
//	go build -o bin/ecb ./cmd/ecb && go run ./bench/storm --ecb bin/ecb --clients 10000 --within 5s
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	_ "modernc.org/sqlite"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

const audience = "ecb-storm"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "backend" {
		if err := serveBackend(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "storm backend:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

// serveBackend is the reference backend's process: it seeds the users and
// threads, prints "ready ADDR" and serves until stdin closes.
func serveBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	dir := fs.String("dir", "", "")
	users := fs.Int("users", 0, "")
	per := fs.Int("per-thread", 10, "")
	always := fs.Bool("reissue-always", false, "")
	_ = fs.Parse(args)
	ctx := context.Background()
	keyPEM, err := os.ReadFile(filepath.Join(*dir, "private.pem"))
	if err != nil {
		return err
	}
	key, err := ecbserver.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return err
	}
	opts := ecbserver.SignerOptions{Audience: audience}
	if *always {
		opts.ReissueWithin = 1000 * time.Hour // every token is "due": a fresh one with every message, as before contract 1.5
	}
	signer, err := ecbserver.NewTokenSigner(key, opts)
	if err != nil {
		return err
	}
	secret, err := os.ReadFile(filepath.Join(*dir, "secret"))
	if err != nil {
		return err
	}
	path := filepath.Join(*dir, "backend.db")
	srv, err := refbackend.Open(ctx, refbackend.Config{Path: path, Secret: secret, Signer: signer,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), PasswordIterations: 1000})
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := seed(ctx, path, *users, *per); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("ready %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return hs.Close()
}

// seed writes the load's users (s0, s1, ...) and threads (st0, ...) into
// the reference backend's tables, in one transaction.
func seed(ctx context.Context, path string, users, per int) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for i := range users {
		u := "s" + strconv.Itoa(i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO users(id,name,password_hash,password_salt,password_iter) VALUES(?,?,x'00',x'00',1)`, u, u); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		th := "st" + strconv.Itoa(i/per)
		if i%per == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO threads(id,created_by,created_at,updated_at) VALUES(?,?,1,1)`, th, u); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO thread_members(thread_id,user_id) VALUES(?,?)`, th, u); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return tx.Commit()
}

type result struct {
	Clients         int            `json:"clients"`
	WithinMs        int64          `json:"withinMs"`
	Listening       int            `json:"listening"`
	Failed          int            `json:"failed"`
	FailedByCode    map[string]int `json:"failedByCode"`
	AllListeningMs  int64          `json:"allListeningMs"`
	ListenP50Ms     float64        `json:"listenP50Ms"`
	ListenP99Ms     float64        `json:"listenP99Ms"`
	Sends           int            `json:"sends"`
	SendRate        float64        `json:"sendRate"`
	AckP50Ms        float64        `json:"ackP50Ms"`
	AckP99Ms        float64        `json:"ackP99Ms"`
	BackendP50Ms    float64        `json:"backendAddThreadMessageP50Ms"`
	OwnP50Ms        float64        `json:"ecbOwnSendMessageP50Ms"`
	AckMinusBackend float64        `json:"ackP50MinusBackendP50Ms"`
	TokensReissued  int            `json:"threadTokensReissued"`
	ECBFlags        []string       `json:"ecbSettings,omitempty"`
	ReissueAlways   bool           `json:"reissueAlways"`
	FileLimit       int            `json:"fileLimit"`
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func run() error {
	clients := flag.Int("clients", 10000, "distinct users connecting")
	within := flag.Duration("within", 5*time.Second, "the connects are spread evenly over this")
	per := flag.Int("per-thread", 10, "members per thread")
	ecbBin := flag.String("ecb", "bin/ecb", "the ecb binary")
	sends := flag.Int("sends", 200, "sendMessage calls after the storm")
	rate := flag.Float64("rate", 20, "sendMessage calls per second")
	timeout := flag.Duration("timeout", 120*time.Second, "deadline of every client's getThreads+getThread")
	always := flag.Bool("reissue-always", false, "the backend signs a fresh threadToken with every message (the behaviour before contract 1.5)")
	var sets multi
	flag.Var(&sets, "set", "an ECB setting key=value (repeatable), e.g. backend.maxConcurrent=8")
	flag.Parse()
	limit := raiseFileLimit()

	dir, err := os.MkdirTemp("", "ecb-storm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privPEM, err := auth.EncodePrivateKeyPEM(priv)
	if err != nil {
		return err
	}
	pubPEM, err := auth.EncodePublicKeyPEM(pub)
	if err != nil {
		return err
	}
	rb := make([]byte, 24)
	_, _ = rand.Read(rb)
	secret := hex.EncodeToString(rb)
	for name, data := range map[string][]byte{"private.pem": privPEM, "public.pem": pubPEM, "secret": []byte(secret)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	be := exec.CommandContext(ctx, self, "backend", "-dir", dir, "-users", strconv.Itoa(*clients), "-per-thread", strconv.Itoa(*per),
		"-reissue-always="+strconv.FormatBool(*always))
	be.Stderr = os.Stderr
	beIn, _ := be.StdinPipe()
	beOut, _ := be.StdoutPipe()
	if err := be.Start(); err != nil {
		return err
	}
	defer func() { beIn.Close(); _ = be.Wait() }()
	line, err := bufio.NewReader(beOut).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		return fmt.Errorf("backend did not start: %q %v", line, err)
	}
	backendAddr := strings.TrimSpace(strings.TrimPrefix(line, "ready "))

	listen, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`listen: %s
adminListen: %s
log: {level: warn}
auth: {algorithms: [EdDSA], publicKeyFile: %s, audience: %s}
backend: {url: "http://%s/ecb/v1", secret: %q}
limits: {handshakesPerSecondPerIP: 1000000, handshakeBurstPerIP: 1000000, opsPerSecondPerConnection: 1000, opsBurstPerConnection: 1000, opsPerSecondPerUser: 1000, opsBurstPerUser: 1000}
`, listen, admin, filepath.Join(dir, "public.pem"), audience, backendAddr, secret)
	if err := os.WriteFile(filepath.Join(dir, "ecb.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	args := []string{"serve", "--config", filepath.Join(dir, "ecb.yaml")}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	ecb := exec.CommandContext(ctx, *ecbBin, args...)
	ecb.Stderr = os.Stderr
	if err := ecb.Start(); err != nil {
		return err
	}
	defer func() { _ = ecb.Process.Signal(syscall.SIGTERM); _ = ecb.Wait() }()
	if err := waitReady(ctx, "http://"+listen+"/readyz"); err != nil {
		return err
	}

	key, err := ecbserver.ParsePrivateKeyPEM(privPEM)
	if err != nil {
		return err
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: audience})
	if err != nil {
		return err
	}
	tokens := make([]string, *clients)
	for i := range tokens {
		if tokens[i], err = signer.SignUserToken(ecbserver.UserTokenParams{ID: "s" + strconv.Itoa(i), Name: "s"}); err != nil {
			return err
		}
	}

	res := result{Clients: *clients, WithinMs: within.Milliseconds(), FailedByCode: map[string]int{}, ECBFlags: sets, FileLimit: limit, ReissueAlways: *always}
	conns := make([]*client, *clients)
	lat := make([]float64, *clients)
	codes := make([]string, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *clients {
		at := start.Add(time.Duration(int64(*within) * int64(i) / int64(*clients)))
		time.Sleep(time.Until(at))
		wg.Go(func() {
			cctx, ccancel := context.WithTimeout(ctx, *timeout)
			defer ccancel()
			c, code := listenOne(cctx, listen, tokens[i])
			conns[i], codes[i] = c, code
			lat[i] = float64(time.Since(at).Microseconds()) / 1000
		})
	}
	wg.Wait()
	res.AllListeningMs = time.Since(start).Milliseconds()
	var ok []float64
	for i, c := range codes {
		if c == "" {
			res.Listening++
			ok = append(ok, lat[i])
		} else {
			res.Failed++
			res.FailedByCode[c]++
		}
	}
	res.ListenP50Ms, res.ListenP99Ms = quantile(ok, .5), quantile(ok, .99)

	// The light-rate sendMessage phase, on the first listening client.
	var sender *client
	for _, c := range conns {
		if c != nil {
			sender = c
			break
		}
	}
	if sender != nil && *sends > 0 {
		before, _ := scrape("http://" + admin + "/metrics")
		acks, reissued, err := sender.sendAll(ctx, *sends, *rate)
		if err != nil {
			return err
		}
		after, err := scrape("http://" + admin + "/metrics")
		if err != nil {
			return err
		}
		res.Sends, res.SendRate, res.TokensReissued = len(acks), *rate, reissued
		res.AckP50Ms, res.AckP99Ms = quantile(acks, .5), quantile(acks, .99)
		res.BackendP50Ms = histQuantile(before, after, `ecb_backend_call_duration_seconds_bucket{call="addThreadMessage",outcome="ok",`, .5) * 1000
		res.OwnP50Ms = histQuantile(before, after, `ecb_operation_own_duration_seconds_bucket{op="sendMessage",`, .5) * 1000
		res.AckMinusBackend = round(res.AckP50Ms - res.BackendP50Ms)
	}
	for _, c := range conns {
		if c != nil {
			c.conn.Close()
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// client is one Socket.IO v5 connection over a WebSocket (Engine.IO v4).
type client struct {
	conn   net.Conn
	rw     io.ReadWriter // reads through the dialer's buffer
	mu     sync.Mutex
	acks   map[int]chan []byte
	nextID int
	token  string
}

// listenOne connects as the user of userToken, gets its threads and listens
// to the first; it returns "" or the error code that stopped it.
func listenOne(ctx context.Context, addr, userToken string) (*client, string) {
	conn, br, _, err := ws.Dialer{Timeout: 30 * time.Second}.Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		return nil, "dial"
	}
	// The open packet may have come with the handshake's answer, in br.
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	c := &client{conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{r, conn}, acks: map[int]chan []byte{}}
	fail := func(code string) (*client, string) { conn.Close(); return nil, code }
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	p, err := wsutil.ReadServerText(c.rw)
	if err != nil || len(p) == 0 || p[0] != '0' {
		return fail("open")
	}
	auth, _ := json.Marshal(map[string]string{"userToken": userToken})
	if err := wsutil.WriteClientText(conn, append([]byte("40"), auth...)); err != nil {
		return fail("write")
	}
	for {
		p, err := wsutil.ReadServerText(c.rw)
		if err != nil {
			return fail("connect")
		}
		if strings.HasPrefix(string(p), "44") {
			var e struct {
				Data struct{ Code string } `json:"data"`
			}
			_ = json.Unmarshal(p[2:], &e)
			return fail("connect_" + e.Data.Code)
		}
		if strings.HasPrefix(string(p), "40") {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	go c.read()
	var threads struct {
		Data struct {
			Items []struct {
				ThreadToken string `json:"threadToken"`
			} `json:"items"`
		} `json:"data"`
		Error *struct{ Code string } `json:"error"`
	}
	if code := c.call(ctx, "getThreads", map[string]any{}, &threads); code != "" {
		return fail(code)
	}
	if threads.Error != nil {
		return fail(threads.Error.Code)
	}
	if len(threads.Data.Items) == 0 {
		return fail("no_thread")
	}
	c.token = threads.Data.Items[0].ThreadToken
	var got struct {
		Error *struct{ Code string } `json:"error"`
	}
	if code := c.call(ctx, "getThread", map[string]any{"threadToken": c.token, "limit": 1}, &got); code != "" {
		return fail(code)
	}
	if got.Error != nil {
		return fail(got.Error.Code)
	}
	return c, ""
}

// read answers pings and routes acks; pushes are dropped.
func (c *client) read() {
	for {
		p, err := wsutil.ReadServerText(c.rw)
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.acks {
				close(ch)
				delete(c.acks, id)
			}
			c.acks = nil
			c.mu.Unlock()
			return
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			c.mu.Lock()
			_ = wsutil.WriteClientText(c.conn, []byte("3"))
			c.mu.Unlock()
		case strings.HasPrefix(string(p), "43"):
			i := 2
			for i < len(p) && p[i] >= '0' && p[i] <= '9' {
				i++
			}
			id, _ := strconv.Atoi(string(p[2:i]))
			c.mu.Lock()
			ch := c.acks[id]
			delete(c.acks, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- slices.Clone(p[i:])
			}
		}
	}
}

// call emits op with payload and decodes the ack's envelope into out; it
// returns "" or a transport failure.
func (c *client) call(ctx context.Context, op string, payload, out any) string {
	body, _ := json.Marshal([]any{op, payload})
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.acks == nil {
		c.mu.Unlock()
		return "closed"
	}
	id := c.nextID
	c.nextID++
	c.acks[id] = ch
	err := wsutil.WriteClientText(c.conn, append([]byte("42"+strconv.Itoa(id)), body...))
	c.mu.Unlock()
	if err != nil {
		return "write"
	}
	select {
	case p, ok := <-ch:
		if !ok {
			return "closed"
		}
		var env []json.RawMessage
		if json.Unmarshal(p, &env) != nil || len(env) == 0 || json.Unmarshal(env[0], out) != nil {
			return "bad_ack"
		}
		return ""
	case <-ctx.Done():
		return "timeout"
	}
}

// sendAll sends n messages at rate per second, each after the previous ack,
// and returns the ack latencies (ms) and how many answers carried a
// threadToken other than the one sent.
func (c *client) sendAll(ctx context.Context, n int, rate float64) ([]float64, int, error) {
	var lat []float64
	reissued := 0
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		var ack struct {
			Data struct {
				ThreadToken string `json:"threadToken"`
			} `json:"data"`
			Error *struct{ Code string } `json:"error"`
		}
		t0 := time.Now()
		if code := c.call(ctx, "sendMessage", map[string]any{"threadToken": c.token, "body": strings.Repeat("x", 200), "clientMessageId": "m" + strconv.Itoa(i)}, &ack); code != "" {
			return nil, 0, fmt.Errorf("sendMessage: %s", code)
		}
		if ack.Error != nil {
			return nil, 0, fmt.Errorf("sendMessage: %s", ack.Error.Code)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		if ack.Data.ThreadToken != c.token {
			reissued++
			c.token = ack.Data.ThreadToken
		}
	}
	return lat, reissued, nil
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(ctx context.Context, url string) error {
	for range 200 {
		resp, err := http.Get(url) //nolint:noctx // a local readiness poll
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("ecb serve did not become ready")
}

func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url) //nolint:noctx // a local scrape
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// histQuantile interpolates quantile q of the observations a histogram got
// between two scrapes; prefix is the bucket series up to its le label.
func histQuantile(before, after map[string]float64, prefix string, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, v := range after {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		le := strings.TrimSuffix(strings.TrimPrefix(k[len(prefix):], `le="`), `"}`)
		f, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			f, err = math.Inf(1), nil
		}
		if err == nil {
			bs = append(bs, bucket{f, v - before[k]})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0
	}
	rank := q * bs[len(bs)-1].n
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			return prevLe + (b.le-prevLe)*(rank-prevN)/math.Max(b.n-prevN, 1e-9)
		}
		prevLe, prevN = b.le, b.n
	}
	return prevLe
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return round(s[min(len(s)-1, int(q*float64(len(s))))])
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func raiseFileLimit() int {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return int(l.Cur)
}
