// alloc.go - a Go program that makes its runtime give memory back: large slices allocated, touched and
// dropped, runtime.GC() and debug.FreeOSMemory() (the runtime munmaps, madvises and maps over its own
// heap with its own syscall instructions). Standard library only; built at test time (build.sh).
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

func main() {
	total := 0
	for round := 0; round < 8; round++ {
		bufs := make([][]byte, 0, 16)
		for i := 0; i < 16; i++ {
			b := make([]byte, 4<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = byte(i)
			}
			bufs = append(bufs, b)
		}
		for _, b := range bufs {
			total += int(b[0])
		}
		bufs = nil
		runtime.GC()
		debug.FreeOSMemory()
	}
	fmt.Println("total", total)
}
