package knsock

// The Go ends of the stream and store trampolines in trampolines.c. A file with //export may
// only have declarations in its preamble.

/*
#include <stddef.h>
#include <stdint.h>
#include <knsock.h>
*/
import "C"

import (
	"io/fs"
	"runtime/cgo"
	"time"
	"unsafe"
)

//export knsockGoRead
func knsockGoRead(h C.uintptr_t, buf *C.uint8_t, n C.size_t) C.size_t {
	st := cgo.Handle(h).Value().(*readState)
	if st.err != nil {
		return ^C.size_t(0) // KNSOCK_READ_ABORT
	}
	got, err := st.read(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	if err != nil {
		st.err = err
		return ^C.size_t(0)
	}
	return C.size_t(got)
}

// storeCall runs f for a store trampoline: KNSOCK_STORE_OK, or KNSOCK_STORE_FAILED with the
// error (or recovered panic) written into reason.
func storeCall(reason *C.char, what string, f func() error) C.int {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered("store "+what, r)
			}
		}()
		return f()
	}()
	if err == nil {
		return C.KNSOCK_STORE_OK
	}
	writeReason(unsafe.Slice((*byte)(unsafe.Pointer(reason)), C.KNSOCK_REASON_MAX), err.Error())
	return C.KNSOCK_STORE_FAILED
}

// upload is what a store's Begin returned, held behind a cgo.Handle until Commit or Abort.
type upload struct{ v any }

//export knsockGoStoreBegin
func knsockGoStoreBegin(h C.uintptr_t, name *C.char, o *C.knsock_store_object, reason *C.char) C.uintptr_t {
	s := cgo.Handle(h).Value().(Store)
	obj := StoredObject{Size: uint64(o.size), ModTime: time.Unix(int64(o.mtime_secs), int64(o.mtime_nanos)),
		Mode: fs.FileMode(o.mode) & fs.ModePerm}
	if o.has_digest {
		obj.Digest = C.GoBytes(unsafe.Pointer(&o.digest[0]), 16)
	}
	var up any
	if storeCall(reason, "begin", func() (err error) {
		up, err = s.Begin(goString(name), obj)
		return err
	}) != C.KNSOCK_STORE_OK {
		return 0
	}
	return C.uintptr_t(newHandle(&upload{up}))
}

//export knsockGoStoreWrite
func knsockGoStoreWrite(h, u C.uintptr_t, p *C.uint8_t, n C.size_t, reason *C.char) C.int {
	s, up := cgo.Handle(h).Value().(Store), cgo.Handle(u).Value().(*upload)
	return storeCall(reason, "write", func() error {
		return s.Write(up.v, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	})
}

//export knsockGoStoreCommit
func knsockGoStoreCommit(h, u C.uintptr_t, reason *C.char) C.int {
	s, up := cgo.Handle(h).Value().(Store), cgo.Handle(u).Value().(*upload)
	rc := storeCall(reason, "commit", func() error { return s.Commit(up.v) })
	if rc == C.KNSOCK_STORE_OK {
		deleteHandle(cgo.Handle(u)) // else Abort follows, and deletes it
	}
	return rc
}

//export knsockGoStoreAbort
func knsockGoStoreAbort(h, u C.uintptr_t) {
	s, up := cgo.Handle(h).Value().(Store), cgo.Handle(u).Value().(*upload)
	defer deleteHandle(cgo.Handle(u))
	defer func() { _ = recover() }()
	s.Abort(up.v)
}

//export knsockGoStoreStat
func knsockGoStoreStat(h C.uintptr_t, name *C.char, o *C.knsock_store_object, reason *C.char) C.int {
	s, ok := cgo.Handle(h).Value().(StatStore)
	if !ok {
		return C.KNSOCK_STORE_NOT_FOUND
	}
	var found *StoredObject
	if rc := storeCall(reason, "stat", func() (err error) {
		found, err = s.Stat(goString(name))
		return err
	}); rc != C.KNSOCK_STORE_OK {
		return rc
	}
	if found == nil {
		return C.KNSOCK_STORE_NOT_FOUND
	}
	o.size = C.uint64_t(found.Size)
	o.mtime_secs = C.int64_t(found.ModTime.Unix())
	o.mtime_nanos = C.uint32_t(found.ModTime.Nanosecond())
	o.mode = C.uint32_t(found.Mode & fs.ModePerm)
	o.has_digest = C.bool(len(found.Digest) == 16)
	if len(found.Digest) == 16 {
		for i, b := range found.Digest {
			o.digest[i] = C.uint8_t(b)
		}
	}
	return C.KNSOCK_STORE_OK
}
