//go:build unix

// Command writefloor measures what the kernel alone charges a server for
// a push: the CPU of one write(2) of a --size byte frame to each of
// --conns loopback TCP connections in turn, in bursts of --fanout writes
// (one push to the listeners of one thread), the bursts paced to --rate
// frames per second (open loop, like `ecb bench stepped`: --fanout 1000 is
// its 1x1000 shape, 100 its 10x100), with nothing else in the writing
// process: no Engine.IO, no hub, no Go scheduler between the writes (the
// descriptors are written with syscall.Write from one goroutine). It is the
// floor under ECB's `server_cpu_us_per_delivery` on the same machine
// (issue 14's target of 5 µs per delivery), and --batch K shows what
// writing K frames in one write(2) (socketio.writeDelay) takes off it.
//
// The readers are another process (this command, re-executed),
// as the load generator is for ECB, so that their CPU is not counted; on
// loopback the receiving socket's TCP work runs partly in the writer's
// system call, which is why the floor is higher here than on a network
// interface. One JSON line.
//
//	go run ./bench/writefloor --conns 1000 --fanout 1000 --size 250 --rate 20000 --writes 200000
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	Scenario         string  `json:"scenario"`
	Conns            int     `json:"conns"`
	Size             int     `json:"size"`
	Batch            int     `json:"batch"`
	Fanout           int     `json:"fanout"`
	Rate             float64 `json:"rate"`
	Writes           int     `json:"writes"`
	Frames           int     `json:"frames"`
	Seconds          float64 `json:"seconds"`
	WriterCPUUsPerFr float64 `json:"writer_cpu_us_per_frame"`
	WriterCPUUsPerWr float64 `json:"writer_cpu_us_per_write"`
	WriterSysShare   float64 `json:"writer_sys_share"`
	ReaderCPUUsPerFr float64 `json:"reader_cpu_us_per_frame"`
	// NullSyscallUs is the CPU of one system call that does nothing
	// (getppid), the entry and exit that every write(2) pays too: what
	// writing many connections in one call (io_uring) could save at most.
	NullSyscallUs     float64 `json:"null_syscall_us"`
	BytesReadByReader int64   `json:"bytes_read_by_reader"`
	LoadAvg           float64 `json:"loadavg"`
}

func main() {
	conns := flag.Int("conns", 1000, "loopback TCP connections")
	size := flag.Int("size", 250, "bytes per frame (an ECB message push frame is about this)")
	batch := flag.Int("batch", 1, "frames per write(2)")
	rate := flag.Float64("rate", 20000, "frames per second, over all connections (0: as fast as possible)")
	writes := flag.Int("writes", 200000, "frames in all")
	fanout := flag.Int("fanout", 1000, "writes per burst (a push's listeners), paced to --rate")
	flag.Parse()
	beReaderIfAsked()
	res, err := run(*conns, *size, *batch, *fanout, *rate, *writes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writefloor:", err)
		os.Exit(1)
	}
	res.NullSyscallUs = nullSyscallUs(200000)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
}

func run(conns, size, batch, fanout int, rate float64, frames int) (*result, error) {
	if conns < 1 || size < 1 || batch < 1 || fanout < 1 || frames < batch {
		return nil, fmt.Errorf("conns, size, batch, fanout must be positive and writes at least batch")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), readerEnv+"="+ln.Addr().String()+" "+strconv.Itoa(conns))
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := child.Start(); err != nil {
		return nil, err
	}
	defer child.Process.Kill() //nolint:errcheck // best effort on the error paths
	fds := make([]int, 0, conns)
	held := make([]*os.File, 0, conns) // keeps the descriptors open
	for range conns {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		f, err := c.(*net.TCPConn).File() // a blocking duplicate of the descriptor
		c.Close()
		if err != nil {
			return nil, err
		}
		held = append(held, f)
		fds = append(fds, int(f.Fd()))
	}
	buf := make([]byte, size*batch)
	for i := range buf {
		buf[i] = 'x'
	}
	writes := frames / batch
	var interval time.Duration // between bursts
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(batch*fanout) / rate)
	}
	u0, s0 := rusage()
	begin := time.Now()
	for i := range writes {
		if burst := i / fanout; interval > 0 && i%fanout == 0 {
			if d := time.Until(begin.Add(time.Duration(burst) * interval)); d > 50*time.Microsecond {
				time.Sleep(d)
			}
		}
		if _, err := syscall.Write(fds[i%conns], buf); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
	}
	elapsed := time.Since(begin)
	u1, s1 := rusage()
	for _, f := range held {
		f.Close()
	}
	// The reader prints its byte count and CPU once every connection ended.
	var got struct {
		Bytes int64 `json:"bytes"`
		CPUNs int64 `json:"cpu_ns"`
	}
	if err := json.NewDecoder(bufio.NewReader(out)).Decode(&got); err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	if err := child.Wait(); err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	if want := int64(writes * batch * size); got.Bytes != want {
		return nil, fmt.Errorf("the reader got %d bytes, want %d", got.Bytes, want)
	}
	cpu := (u1 - u0) + (s1 - s0)
	n := writes * batch
	return &result{
		Scenario: "writefloor", Conns: conns, Size: size, Batch: batch, Fanout: fanout, Rate: rate,
		Writes: writes, Frames: n, Seconds: round(elapsed.Seconds(), 3),
		WriterCPUUsPerFr: round(float64(cpu.Microseconds())/float64(n), 2),
		WriterCPUUsPerWr: round(float64(cpu.Microseconds())/float64(writes), 2),
		WriterSysShare:   round(float64(s1-s0)/float64(max(cpu, 1)), 2),
		ReaderCPUUsPerFr: round(float64(got.CPUNs)/1e3/float64(n), 2), BytesReadByReader: got.Bytes,
		LoadAvg: loadavg(),
	}, nil
}

// readerEnv, in the environment of the re-executed command, makes it the
// reader process: "ADDR CONNS".
const readerEnv = "WRITEFLOOR_READER"

// beReaderIfAsked runs the reader and exits when readerEnv is set (in the
// command and in its test binary alike).
func beReaderIfAsked() {
	v := os.Getenv(readerEnv)
	if v == "" {
		return
	}
	var addr string
	var conns int
	if _, err := fmt.Sscan(v, &addr, &conns); err != nil {
		fmt.Fprintf(os.Stderr, "writefloor reader: %s=%q: %v\n", readerEnv, v, err)
		os.Exit(2)
	}
	if err := reader(addr, conns); err != nil {
		fmt.Fprintln(os.Stderr, "writefloor reader:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// reader dials conns connections to addr, reads each to its end, then
// prints {"bytes", "cpu_ns"}.
func reader(addr string, conns int) error {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer c.Close()
			n, err := io.Copy(io.Discard, c)
			total.Add(n)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	u, s := rusage()
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"bytes": total.Load(), "cpu_ns": int64(u + s)})
}

// nullSyscallUs is the CPU per call of n getppid system calls, made
// without the Go scheduler's bookkeeping (RawSyscall), as
// result.NullSyscallUs.
func nullSyscallUs(n int) float64 {
	u0, s0 := rusage()
	for range n {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	u1, s1 := rusage()
	return round(float64(((u1-u0)+(s1-s0)).Nanoseconds())/1e3/float64(n), 3)
}

func rusage() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

func loadavg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscan(string(raw), &v) //nolint:errcheck // 0 when unreadable
	return v
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
