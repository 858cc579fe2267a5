package knsock

// The Go ends of the C trampolines in trampolines.c. A file with //export may only have
// declarations in its preamble.

/*
#include <stddef.h>
#include <stdint.h>
#include <knsock.h>
*/
import "C"

import (
	"fmt"
	"io/fs"
	"runtime/cgo"
	"time"
	"unicode/utf8"
	"unsafe"
)

// recovered turns a panic value into an error naming the callback.
func recovered(what string, r any) error {
	return fmt.Errorf("panic in %s: %v", what, r)
}

//export knsockGoProgress
func knsockGoProgress(h C.uintptr_t, sent, total C.uint64_t) C.int {
	st := cgo.Handle(h).Value().(*sendState)
	var f func() error
	if st.progress != nil {
		f = func() error { return st.progress(uint64(sent), uint64(total)) }
	}
	return goOn(st.callback("progress callback", f))
}

//export knsockGoBatchProgress
func knsockGoBatchProgress(h C.uintptr_t, receiver C.size_t, name *C.char, index, count C.size_t,
	fileSent, fileTotal, sent, total C.uint64_t) C.int {
	st := cgo.Handle(h).Value().(*sendState)
	var f func() error
	if st.batch != nil { // else installed only to check the context
		p := BatchProgress{Name: goString(name), Index: int(index), Count: int(count),
			FileSent: uint64(fileSent), FileTotal: uint64(fileTotal), Sent: uint64(sent), Total: uint64(total),
			Receiver: int(receiver)}
		f = func() error { return st.batch(p) }
	}
	return goOn(st.callback("batch progress callback", f))
}

// goOn is what a progress trampoline returns: KNSOCK_CONTINUE, or another value to abort.
func goOn(ok bool) C.int {
	if ok {
		return C.KNSOCK_CONTINUE
	}
	return C.KNSOCK_CONTINUE + 1
}

//export knsockGoDone
func knsockGoDone(h C.uintptr_t, code C.int, err *C.knsock_error) {
	st := cgo.Handle(h).Value().(*sendState)
	if code == C.KNSOCK_RESULT_OK {
		st.done <- nil
		return
	}
	st.done <- errorFrom(code, err)
}

// fileInfo copies a borrowed knsock_file_info.
func fileInfo(info *C.knsock_file_info) FileInfo {
	return FileInfo{
		Name:    goString(C.knsock_file_info_name(info)),
		Size:    uint64(C.knsock_file_info_size(info)),
		ModTime: time.Unix(int64(C.knsock_file_info_mtime(info)), 0),
		Mode:    fs.FileMode(C.knsock_file_info_mode(info)) & fs.ModePerm,
		Peer:    goString(C.knsock_file_info_peer(info)),
		Path:    goString(C.knsock_file_info_path(info)),
		// Identity: who the sender proved to be; empty when anonymous.
		Identity: goString(C.knsock_file_info_identity(info)),
	}
}

//export knsockGoValidate
func knsockGoValidate(h C.uintptr_t, post C.int, info *C.knsock_file_info, reason *C.char, n C.size_t) C.int {
	ss := cgo.Handle(h).Value().(*serverState)
	f, what := ss.pre, "pre-validator"
	if post != 0 {
		f, what = ss.post, "post-validator"
	}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(what, r)
			}
		}()
		return f(fileInfo(info))
	}()
	if err == nil {
		return 0
	}
	writeReason(unsafe.Slice((*byte)(unsafe.Pointer(reason)), int(n)), err.Error())
	return 1
}

// writeReason copies msg into buf, NUL-terminated, cut at a UTF-8 boundary if it is too long.
func writeReason(buf []byte, msg string) {
	if len(buf) == 0 {
		return
	}
	if len(msg) > len(buf)-1 {
		cut := len(buf) - 1
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	n := copy(buf, msg)
	buf[n] = 0
}

//export knsockGoReceived
func knsockGoReceived(h C.uintptr_t, info *C.knsock_file_info) {
	ss := cgo.Handle(h).Value().(*serverState)
	fi := fileInfo(info)
	defer func() {
		if r := recover(); r != nil {
			ss.reportError(&Error{Code: CodeAbortedByCallback, Message: "received handler failed",
				Err: recovered("received handler", r)})
		}
	}()
	ss.handler(fi)
}

//export knsockGoError
func knsockGoError(h C.uintptr_t, code C.int, msg, peer *C.char) {
	ss := cgo.Handle(h).Value().(*serverState)
	ss.reportError(&Error{Code: Code(code), Message: goString(msg), Peer: goString(peer)})
}

//export knsockGoFinalize
func knsockGoFinalize(h C.uintptr_t) {
	deleteHandle(cgo.Handle(h))
}
