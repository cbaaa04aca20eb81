package cli

import "os"

func environ() []string { return os.Environ() }
