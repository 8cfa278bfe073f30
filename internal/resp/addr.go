package resp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// CheckAddr reports, without dialing, whether Dial accepts addr: nil, or
// an error wrapping ErrAddress that says what is wrong with it.
func CheckAddr(addr string) error {
	_, err := resolve(addr)
	return err
}

// resolve returns the addresses Dial tries for addr, in order: one for
// an IP literal, 127.0.0.1 then ::1 for localhost (as /etc/hosts has
// them on every Linux host). Anything else would need a DNS lookup, and
// this package makes none: a resolver is what package net would bring
// into every program that imports this one.
func resolve(addr string) ([]netip.AddrPort, error) {
	host, portStr, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || portStr[0] == '+' || portStr[0] == '0' {
		// Canonical decimal only: "000001" is port 1 to ParseUint, and
		// to a reader of the flag most likely a typo.
		return nil, fmt.Errorf("%w %q: port %q: want a number from 1 to 65535, without leading zeros", ErrAddress, addr, portStr)
	}
	if strings.EqualFold(host, "localhost") {
		return []netip.AddrPort{
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)),
			netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)),
		}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %q is not an IP address or localhost (no DNS lookups here: give the server's IP)", ErrAddress, addr, host)
	}
	if z := ip.Zone(); z != "" {
		if _, err := strconv.ParseUint(z, 10, 32); err != nil {
			return nil, fmt.Errorf("%w %q: zone %q: give the interface's index, not its name", ErrAddress, addr, z)
		}
	}
	return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}, nil
}

// splitHostPort splits "host:port" and "[host]:port" as net.SplitHostPort
// does, without package net.
func splitHostPort(addr string) (host, port string, err error) {
	if strings.HasPrefix(addr, "[") {
		end := strings.Index(addr, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("%w %q: want [ipv6]:port", ErrAddress, addr)
		}
		host, port = addr[1:end], addr[end+2:]
	} else {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return "", "", fmt.Errorf("%w %q: want ip:port, [ipv6]:port or localhost:port", ErrAddress, addr)
		}
		host, port = addr[:i], addr[i+1:]
		if strings.ContainsRune(host, ':') {
			return "", "", fmt.Errorf("%w %q: an IPv6 address needs brackets: [ipv6]:port", ErrAddress, addr)
		}
	}
	if host == "" || port == "" {
		return "", "", fmt.Errorf("%w %q: want ip:port, [ipv6]:port or localhost:port", ErrAddress, addr)
	}
	return host, port, nil
}
