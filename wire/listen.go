package wire

import "net"

// Listen opens the TCP listener a node serves peers and clients on. It lives
// here because wire is the only package that touches sockets.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
