package knsock

// Store: received files go into the embedding program's own storage through
// knsock_server_config_set_store(), only once verified.

import (
	"io/fs"
	"time"
)

// StoredObject is an object as a Store sees it: what Begin is told, and what Stat returns.
type StoredObject struct {
	Size    uint64
	ModTime time.Time   // the sender's modification time
	Mode    fs.FileMode // permission bits, within the server's mode mask
	Digest  []byte      // the content's XXH3-128 (16 bytes, big-endian); Begin always has it
}

// Store is the embedding program's own storage (ServerConfig.Store): received files go into
// it, only once verified, instead of Dir (which then only spools content on its way). For one
// file the server calls, from one of its threads and in order: Begin, which returns anything
// standing for the upload, Write for each piece (p is valid only during the call), then
// Commit; Abort instead of (or after a failed) Commit. An error (or a panic) fails the file:
// its sender gets ErrStore with the error's text as PeerReason, nothing is committed, and the
// server goes on. Methods are called for several files at once: they must be safe for
// concurrent use. Delta transfer does not apply to a store; resume keeps partial data in Dir.
type Store interface {
	Begin(name string, obj StoredObject) (upload any, err error)
	Write(upload any, p []byte) error
	Commit(upload any) error
	Abort(upload any)
}

// StatStore is a Store that can say what it holds (nil, nil: nothing under the name), so
// WithSkipUnchanged skips files it holds unchanged and OverwriteRefuse refuses.
type StatStore interface {
	Store
	Stat(name string) (*StoredObject, error)
}
