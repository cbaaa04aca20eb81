package lbtest

import "syscall"

// orphanProof makes the balancer's main process end when the test binary
// dies (even by SIGKILL, or a test timeout), so that it never outlives it.
// SIGTERM rather than SIGKILL: nginx's master then takes its workers down.
func orphanProof(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
