package cli

import (
	"os/exec"
	"syscall"
)

// orphanProof makes a node process end when the demo that started it dies
// (even by SIGKILL), so that no node outlives its demo.
func orphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
