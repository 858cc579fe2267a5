# shellcheck shell=bash
# Sourced by scripts/test.sh, scripts/stress.sh and scripts/demo.sh before they build Go code:
# the Go binding finds knsock through pkg-config, as its users' builds do, so this installs the
# release build (scripts/install.sh) into build/go-prefix and exports PKG_CONFIG_PATH and
# CGO_CFLAGS; it puts /usr/local/go/bin on PATH when go is not there already.
# Go's build cache does not hash libknsock.a (a linker input pkg-config names): CGO_CFLAGS keys
# the cgo build on the library's content so a rebuilt library is always linked. The key holds
# the prefix too: the link names the library by its path. The prefix stays where it is between
# runs, so an unchanged library reuses Go's cache instead of compiling the binding again.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go_prefix=$PWD/build/go-prefix
LIBDIR=lib scripts/install.sh "$go_prefix" >/dev/null
export PKG_CONFIG_PATH=$go_prefix/lib/pkgconfig
CGO_CFLAGS="-O2 -g -DKNSOCK_LIB_ID=$( (sha256sum "$go_prefix/lib/libknsock.a"; echo "$go_prefix") | sha256sum | cut -c1-16)"
export CGO_CFLAGS
