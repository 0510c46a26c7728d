package p2p

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

var (
	// ErrListen reports that the host could not listen on an address it
	// was asked to.
	ErrListen = errors.New("cannot listen")
	// ErrAddrInUse reports that a listen address's port is taken by another
	// program (or another nube node). It comes wrapped with ErrListen.
	ErrAddrInUse = errors.New("address already in use")
)

// listenError turns libp2p's long "failed to listen" error into one that
// names the problem.
func listenError(err error, addrs []ma.Multiaddr) error {
	if isAddrInUse(err) {
		return fmt.Errorf("%w on %v: %w", ErrListen, addrs, ErrAddrInUse)
	}
	if strings.Contains(err.Error(), "failed to listen") {
		return fmt.Errorf("%w on %v: %v", ErrListen, addrs, err)
	}
	return fmt.Errorf("start libp2p host: %w", err)
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") ||
		strings.Contains(err.Error(), "Only one usage of each socket address")
}

// checkListening makes sure the host listens on every address it was asked
// to. libp2p fails only when no address works; a node asked for TCP and QUIC
// on a port whose UDP side is taken would otherwise run with half its
// transports and say nothing.
func checkListening(h host.Host, want []ma.Multiaddr) error {
	have := h.Network().ListenAddresses()
	for _, w := range want {
		if !listensOn(have, w) {
			err := tryListen(w)
			if err == nil {
				err = errors.New("listener did not start (reason unknown)")
			}
			return fmt.Errorf("%w on %s: %w", ErrListen, w, err)
		}
	}
	return nil
}

// listensOn reports whether some listener matches w: the same protocols and
// IP, and the same port unless w asked for port 0.
func listensOn(have []ma.Multiaddr, w ma.Multiaddr) bool {
	wp := w.Protocols()
	for _, h := range have {
		hp := h.Protocols()
		if len(hp) != len(wp) {
			continue
		}
		same := true
		for i := range wp {
			if hp[i].Code != wp[i].Code {
				same = false
				break
			}
			wv, _ := w.ValueForProtocol(wp[i].Code)
			hv, _ := h.ValueForProtocol(hp[i].Code)
			isPort := wp[i].Code == ma.P_TCP || wp[i].Code == ma.P_UDP
			if wv != hv && !(isPort && wv == "0") {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// checkFree makes sure every listen address with a fixed port can be bound,
// before libp2p is built: libp2p does not stop everything it started when
// its listeners fail, and the OS's own error is the clearer one.
func checkFree(addrs []ma.Multiaddr) error {
	for _, a := range addrs {
		port, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil {
			port, err = a.ValueForProtocol(ma.P_UDP)
		}
		if err != nil || port == "0" {
			continue
		}
		if err := tryListen(a); err != nil {
			return fmt.Errorf("%w on %s: %w", ErrListen, a, err)
		}
	}
	return nil
}

// tryListen binds w with the OS itself and releases it at once. It returns
// ErrAddrInUse if the port is taken.
func tryListen(w ma.Multiaddr) error {
	network, addr, err := manet.DialArgs(w)
	if err != nil {
		return err
	}
	var cerr error
	switch {
	case strings.HasPrefix(network, "tcp"):
		l, err := net.Listen(network, addr)
		if err == nil {
			cerr = l.Close()
		} else {
			cerr = err
		}
	case strings.HasPrefix(network, "udp"):
		c, err := net.ListenPacket(network, addr)
		if err == nil {
			cerr = c.Close()
		} else {
			cerr = err
		}
	default:
		return fmt.Errorf("unsupported transport %s", network)
	}
	if cerr != nil && isAddrInUse(cerr) {
		return ErrAddrInUse
	}
	return cerr
}

// PortFree reports whether TCP and UDP port are both free on all IPv4
// interfaces (and on all IPv6 ones where the machine has IPv6). It binds and
// releases them at once, so the answer can be stale by the time it is used.
func PortFree(port int) bool {
	for _, nw := range []string{"tcp4", "tcp6", "udp4", "udp6"} {
		host := "0.0.0.0"
		if strings.HasSuffix(nw, "6") {
			host = "::"
		}
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		var err error
		if strings.HasPrefix(nw, "tcp") {
			var l net.Listener
			if l, err = net.Listen(nw, addr); err == nil {
				l.Close()
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket(nw, addr); err == nil {
				c.Close()
			}
		}
		if err != nil && (isAddrInUse(err) || !strings.HasSuffix(nw, "6")) {
			return false
		}
	}
	return true
}
