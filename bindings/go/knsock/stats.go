package knsock

/*
#include <knsock.h>
*/
import "C"

import "unsafe"

// StatsCodes is the number of slots of ServerStats.FilesRejected and FilesFailed: slot c counts
// refusal code c (1 to 16, docs/protocol.md section 5); slot 0 counts codes this library does not
// know.
const StatsCodes = C.KNSOCK_STATS_CODES

// ServerStats is what a server has done since it started (totals that only grow) and the use of
// its bounded resources now. Nothing in it names a file or a sender.
type ServerStats struct {
	ConnectionsOpen     uint64 // connections being served now
	ConnectionsAccepted uint64 // connections accepted since the start
	FilesReceived       uint64 // files stored (the sender told OK)
	FilesSkipped        uint64 // offers answered SKIP: the receiver already had the file
	// Offers refused before their data (REJECT), and files whose content came but that were
	// not stored (FAILED), by refusal code.
	FilesRejected, FilesFailed [StatsCodes]uint64
	BytesReceived              uint64 // bytes read from senders, frames included
	BytesStored                uint64 // bytes of the files stored
	BytesReused                uint64 // bytes deltas took from the receiver's old copies
	Resumes                    uint64 // uploads resumed
	AuthFailures               uint64 // senders refused for their credentials
	TLSHandshakes              uint64 // TLS handshakes completed
	StoreRequests              uint64 // requests to the object store (each try)
	StoreFailures              uint64 // of those, the ones that failed
	ConnectionsMax             uint64 // the most connections served at once
	DecodersInUse, DecodersMax uint64 // zstd decoders in use now, and the most at once
	FilesInFlight              uint64 // files admitted, not yet stored or failed
	SpaceReserved              uint64 // disk bytes promised to files in flight
	DescriptorsOpen            uint64 // descriptors the process has open (0: unknown)
	DescriptorsLimit           uint64 // the process's descriptor limit
	ConnectionsBusy            uint64 // connections refused at the cap ("receiver busy")
}

// Rejected is the number of offers refused before their data, whatever the code.
func (s ServerStats) Rejected() (n uint64) {
	for _, v := range s.FilesRejected {
		n += v
	}
	return n
}

// Failed is the number of files not stored after their data, whatever the code.
func (s ServerStats) Failed() (n uint64) {
	for _, v := range s.FilesFailed {
		n += v
	}
	return n
}

// Stats returns the server's statistics (knsock_server_stats); all zero once it is closed. It
// may be called from any goroutine, also from the server's own callbacks.
func (s *Server) Stats() ServerStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var c C.knsock_stats
	c.size = C.uint64_t(unsafe.Sizeof(c))
	if s.ptr == nil || C.knsock_server_stats(s.ptr, &c) != C.KNSOCK_RESULT_OK {
		return ServerStats{}
	}
	v := &c.values
	st := ServerStats{
		ConnectionsOpen:     uint64(v.connections_open),
		ConnectionsAccepted: uint64(v.connections_accepted),
		FilesReceived:       uint64(v.files_received),
		FilesSkipped:        uint64(v.files_skipped),
		BytesReceived:       uint64(v.bytes_received),
		BytesStored:         uint64(v.bytes_stored),
		BytesReused:         uint64(v.bytes_reused),
		Resumes:             uint64(v.resumes),
		AuthFailures:        uint64(v.auth_failures),
		TLSHandshakes:       uint64(v.tls_handshakes),
		StoreRequests:       uint64(v.store_requests),
		StoreFailures:       uint64(v.store_failures),
		ConnectionsMax:      uint64(v.connections_max),
		DecodersInUse:       uint64(v.decoders_in_use),
		DecodersMax:         uint64(v.decoders_max),
		FilesInFlight:       uint64(v.files_in_flight),
		SpaceReserved:       uint64(v.space_reserved),
		DescriptorsOpen:     uint64(v.descriptors_open),
		DescriptorsLimit:    uint64(v.descriptors_limit),
		ConnectionsBusy:     uint64(v.connections_busy),
	}
	for i := range st.FilesRejected {
		st.FilesRejected[i] = uint64(v.files_rejected[i])
		st.FilesFailed[i] = uint64(v.files_failed[i])
	}
	return st
}
