// Package wire is paxosd's network layer, and the only package that touches
// sockets: framing and encoding, the server that accepts peers and clients
// on one port, the peer Transport (lazy dial, reconnect with backoff,
// coalesced writes) and the client-side connection and Mux.
//
// docs/PROTOCOL.md specifies the format for implementers in other
// languages; testdata/wire holds golden frames.
//
// # Frames
//
// Every frame is a 4-byte big-endian body length followed by the body, one
// msgpack value: an array whose first element is the frame type.
//
//	+--------+--------+--------+--------+=================================+
//	|     body length (uint32, big-endian)  |  body: msgpack array      |
//	+--------+--------+--------+--------+=================================+
//	                                      body = [frame_type, field1, ...]
//
//	frame_type 0 Hello     [0, "paxosd", version, cluster_id, node_id]
//	frame_type 1 Message   [1, type, from, to, ballot_round, ballot_node,
//	                        slot, commit, reject, entries, slots, cmds]
//	           entry       [slot, ballot_round, ballot_node, value_kind, cmds]
//	           cmds        [bin, bin, ...]
//	frame_type 2 Request   [2, id, op, client_id, seq, acked_below, key, value,
//	                        prefix, prev_value, has_prev_value, prev_revision,
//	                        has_prev_revision, serializable, limit, timeout_ms,
//	                        session_id, ttl_ms, name, token, wait,
//	                        lock_delay_ms, fence_name, fence_token,
//	                        from_revision, watch_prefix, after_seq, cancel_id]
//	frame_type 3 Response  [3, id, err, err_msg, leader_hint, leader_addr,
//	                        revision, found, kv, kvs, status, succeeded,
//	                        session, sessions, token, held, lock, locks,
//	                        leader, events, compact_revision, stream_end]
//	           session     [id, ttl_ms, remaining_ms, locks, waiting, elections]
//	           lock        [name, holder, token, waiters, delay_until_ms]
//	           leader      [election, session, value, term, seq, revision]
//	           watch_event [type, kv, prev_kv]
//
// A body longer than the frame limit (DefaultFrameBytesMax, 16 MiB, unless
// configured) is refused before it is read. Decoders ignore array elements
// after the ones they know and read missing trailing elements as zero, so a
// field is added by appending it; nothing is ever reordered or renumbered.
//
// # Connections
//
//	dialer                                   listener (Serve)
//	  | -- Hello{version, cluster, node|0} -->  |  check magic, version, cluster
//	  | <-- Hello{version', cluster, self} ---  |
//	  | -- Message ... (peer: node != 0) ---->  |  Handler.HandlePeer
//	  | -- Request ... (client: node == 0) -->  |  Handler.HandleClient
//	  | <------------------------- Response --  |    (any order, by id)
//
// # TLS
//
// With ServerConfig.TLS and TransportConfig.TLS (a NodeTLS: the node's
// certificate, the CAs, a CRL, reloaded when the files change) every
// connection is TLS 1.2 or later, and the hello exchange runs inside it
// unchanged. A peer is recognised only by the URI SAN paxosd://node/ID of
// a certificate the peer CA signed, which must name the node its hello
// gives (checkPeerIdentity); a dialing node accepts a listener only if its
// certificate names the node it meant to reach. Clients pass a *tls.Config
// in DialConfig. A plaintext dialer to a TLS node, and a TLS dialer to a
// plaintext one, are told apart by the first byte (0x16 opens a TLS
// handshake, 0x00 a hello) and get an error wrapping ErrTLS that says what
// to pass (tlsconn.go). No direct writes over TLS: a tls.Conn has no socket
// to write to without blocking, so its frames go through the writer
// goroutine.
//
// # Streams and blocking calls
//
// A stream request (OpWatch, OpObserve) is answered by many responses with
// its id, the last one with StreamEnd set; OpCancel (CancelID = the
// stream's id) asks the server to end it. A blocking call (Request.Blocking:
// a lock wait, a campaign) is an ordinary request whose one answer may come
// much later; OpCancel makes the contacted node stop waiting for it, but
// the wait in the cluster (the session's place in the queue) lasts until
// an OpLockRelease or OpResign, or the session's end. On the client side,
// Mux.Call waits for one answer and Mux.Stream returns a Stream whose
// buffer is bounded (StreamBufferMax): a consumer that falls behind loses
// its stream (ErrStreamOverflow), never the connection.
//
// A peer connection carries messages one way, from the node that dialed it;
// each node sends on its own outgoing connections (Transport) and receives
// on those its peers dialed (Serve). A bad hello, another cluster's id, an
// oversized or undecodable frame, or a message whose From is not the peer's
// hello id closes that connection alone, with the reason logged.
//
// # Caller obligations
//
//   - Transport.Send never blocks and may drop (Paxos tolerates loss); it
//     does not copy the message, whose slices must not change afterwards.
//   - Handler.HandlePeer runs on the connection's reader goroutine and must
//     not block for long; HandleClient must return once Recv fails.
//   - Decoded byte slices (commands, values) alias the frame body they were
//     decoded from; the readers here give every frame a fresh body, so
//     holding on to them is safe.
//
// Hot-path codecs (messages) are hand-written over a small msgpack subset
// (msgpack.go), with no reflection; the client codecs are driven by the
// field tables in client_codec.go.
package wire
