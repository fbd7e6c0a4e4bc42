#!/bin/sh
# build.sh SRC_DIR OUT_DIR - builds the Go test program twice with Debian's golang-go, offline and with
# every cache inside OUT_DIR: OUT_DIR/go_cgo (cgo: dynamically linked against libc, the preload loads)
# and OUT_DIR/go_static (no cgo: Go's default static executable, no preload possible).
set -eu
src=$1
out=$2
mkdir -p "$out/gocache" "$out/gopath"
export GOCACHE="$out/gocache" GOPATH="$out/gopath" GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on
cd "$src"
CGO_ENABLED=1 go build -o "$out/go_cgo" .
CGO_ENABLED=0 go build -o "$out/go_static" .
