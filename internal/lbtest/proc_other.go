//go:build unix && !linux

package lbtest

import "syscall"

// orphanProof does nothing outside Linux: there is no parent-death signal,
// and stopGroup at the end of the test is the only guard.
func orphanProof(*syscall.SysProcAttr) {}
