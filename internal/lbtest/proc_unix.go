//go:build unix

package lbtest

import (
	"os/exec"
	"syscall"
	"time"
)

// ownProcessGroup puts the balancer and its workers in a process group of
// their own, so that stopGroup reaches all of them.
func ownProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	orphanProof(cmd.SysProcAttr)
}

// stopGroup ends the balancer's process group: SIGTERM (both nginx and
// HAProxy stop at once on it), then SIGKILL after 5s. It returns when the
// balancer's main process has exited.
func stopGroup(cmd *exec.Cmd, exited <-chan struct{}) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
	// Workers that outlived their master, or a master that ignored SIGTERM.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}
