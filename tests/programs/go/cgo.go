// cgo.go - links the program against libc when cgo is enabled (the go_cgo build), so that the preload
// can load into it; without cgo the file is left out and the program is a static executable (go_static).

//go:build cgo

package main

import _ "runtime/cgo"
