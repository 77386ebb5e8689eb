"""The Linux kernel's VXLAN device as a test peer, in a private network namespace.

:class:`KernelVxlanPeer` lets a test exchange Ethernet frames with a real VXLAN tunnel endpoint
(RFC 7348) — the kernel's ``vxlan`` driver — as if the test were the NIC on the other end of a
cable. A child process (the *agent*, this module run with ``--agent``) leaves the caller's
network namespace for a new one (``unshare(CLONE_NEWNET)``, see unshare(2)) and builds there::

    test (parent)  ==pipe==>  agent, in its own network namespace
                                 TAP "nic0" (IFF_TAP | IFF_NO_PI)   kernel underlay address
                                    |  static neighbours: NIC underlay address -> NIC MAC
                                 VXLAN "vx0" (VNI, UDP port 4789, local = kernel underlay,
                                    |         remote = NIC underlay)
                                 inner address(es); static neighbour + FDB entry for the inner
                                 peer

Frames the test hands to :meth:`KernelVxlanPeer.send_frame` are written to the TAP, so the
kernel receives them as if from the wire; every frame the kernel transmits on the TAP can be
read with :meth:`KernelVxlanPeer.receive_frame`. UDP sockets inside the namespace send to and
receive from the inner peer address (IPv4, and IPv6 when ``inner_ip6`` is given), so a test
sees what the kernel encapsulates and what it accepts after decapsulation, down to the IPv4 TOS
or IPv6 traffic class a datagram arrived with. The namespace, its devices and sockets vanish
with the agent.

The TAP is kept silent: IPv6 duplicate address detection, router solicitations and router
advertisements are disabled, no link-local address is generated, and the TAP is marked
``NOARP`` so the kernel neither resolves neighbours (static entries give the NIC's MAC) nor
joins solicited-node groups (RFC 4861 7.2.1), whose MLD reports would otherwise appear. With an
inner IPv6 address the VXLAN device is ``NOARP`` as well, for the same reason: its MLD reports
would be encapsulated onto the TAP. The only frames the kernel sends on the TAP are the ones the
test provokes.

Requirements: the ``CAP_NET_ADMIN`` and ``CAP_SYS_ADMIN`` capabilities (root), ``/dev/net/tun``
and the iproute2 commands ``ip`` and ``bridge``. Without them the constructor raises
:exc:`KernelPeerError` naming what is missing.

The parent and the agent speak one JSON object per line over the agent's stdin/stdout: a
request ``{"op": ..., ...}`` gets ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``;
frames and payloads travel as hex strings.
"""

import ctypes
import errno
import fcntl
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

__all__ = ["KernelPeerError", "KernelVxlanPeer"]

VXLAN_PORT = 4789  # RFC 7348 5 (IANA)
CLONE_NEWNET = 0x40000000  # <linux/sched.h>
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), <linux/if_tun.h>
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

TAP_NAME = "nic0"
VXLAN_NAME = "vx0"


class KernelPeerError(RuntimeError):
    """The kernel peer could not be set up or an agent request failed."""


# -- the parent side ---------------------------------------------------------------------------


class KernelVxlanPeer:
    """A Linux VXLAN endpoint in a private network namespace, reached through a TAP device.

    Use it as a context manager: entering starts the agent and builds the namespace, leaving
    stops it (the namespace disappears with the agent process).

    Parameters
    ----------
    vni : int
        VXLAN network identifier of the kernel's VXLAN device (24 bits, RFC 7348 5).
    ipv6_underlay : bool
        Tunnel over IPv6 (``kernel_ip6`` to ``nic_ip6``) instead of IPv4 (``kernel_ip4`` to
        ``nic_ip4``). Both underlay addresses are configured on the TAP either way.
    kernel_ip4, nic_ip4 : str
        IPv4 underlay addresses of the kernel (on the TAP, /24) and of the NIC.
    kernel_ip6, nic_ip6 : str
        IPv6 underlay addresses of the kernel (on the TAP, /64) and of the NIC.
    kernel_mac : str
        MAC address of the TAP: the destination MAC of underlay frames sent to the kernel.
    nic_mac : str
        MAC address the kernel uses for the NIC underlay addresses (static neighbours).
    vxlan_mac : str
        MAC address of the kernel's VXLAN device: the inner destination MAC of frames the
        kernel should accept, the inner source MAC of frames it encapsulates.
    inner_ip, inner_peer_ip : str
        Inner IPv4 address of the VXLAN device (``/24``) and of the peer behind the tunnel.
    inner_peer_mac : str
        MAC address of the inner peer (static neighbour and FDB entry pointing at the NIC's
        underlay address).
    inner_ip6, inner_peer_ip6 : str or None
        Inner IPv6 addresses of the VXLAN device (``/64``) and of the peer; the device gets no
        IPv6 address when ``inner_ip6`` is ``None`` (the default).
    udp_csum : bool
        IPv4 underlay only: the kernel computes the outer UDP checksum of what it sends
        (iproute2 ``udpcsum``); otherwise it sends zero (RFC 7348 5 allows both). An IPv6
        underlay always carries checksums (RFC 8200 8.1) and the kernel rejects a zero one.
    start_timeout : float
        Seconds allowed for the agent to build the namespace.

    Attributes
    ----------
    vni, ipv6_underlay, kernel_ip4, nic_ip4, kernel_ip6, nic_ip6, kernel_mac, nic_mac,
    vxlan_mac, inner_ip, inner_peer_ip, inner_peer_mac, inner_ip6, inner_peer_ip6, udp_csum :
        The parameters.
    kernel_underlay_ip, nic_underlay_ip : str
        The underlay addresses of the tunnel (IPv4 or IPv6 per ``ipv6_underlay``).
    vxlan_port : int
        UDP destination port of the tunnel (4789).
    tap_name, vxlan_name : str
        Device names inside the namespace.
    """

    def __init__(self, vni=0x1234, ipv6_underlay=False, *,
                 kernel_ip4="10.99.0.1", nic_ip4="10.99.0.2",
                 kernel_ip6="fd99::1", nic_ip6="fd99::2",
                 kernel_mac="02:00:00:99:00:01", nic_mac="02:00:00:99:00:02",
                 vxlan_mac="02:00:00:99:01:01",
                 inner_ip="192.168.99.1", inner_peer_ip="192.168.99.2",
                 inner_peer_mac="02:00:00:99:01:02", inner_ip6=None, inner_peer_ip6="fd98::2",
                 udp_csum=True, start_timeout=10.0):
        if not 0 <= vni < 1 << 24:
            raise ValueError(f"a VNI has 24 bits, not {vni:#x}")
        self.vni = vni
        self.ipv6_underlay = bool(ipv6_underlay)
        self.kernel_ip4, self.nic_ip4 = kernel_ip4, nic_ip4
        self.kernel_ip6, self.nic_ip6 = kernel_ip6, nic_ip6
        self.kernel_mac, self.nic_mac, self.vxlan_mac = kernel_mac, nic_mac, vxlan_mac
        self.inner_ip, self.inner_peer_ip = inner_ip, inner_peer_ip
        self.inner_peer_mac = inner_peer_mac
        self.inner_ip6, self.inner_peer_ip6 = inner_ip6, inner_peer_ip6
        self.udp_csum = bool(udp_csum)
        self.vxlan_port = VXLAN_PORT
        self.tap_name, self.vxlan_name = TAP_NAME, VXLAN_NAME
        self.start_timeout = start_timeout
        self._proc = None
        self._stderr = None
        self._buffer = b""

    @property
    def kernel_underlay_ip(self):
        """The kernel's end of the tunnel: ``kernel_ip6`` or ``kernel_ip4``."""
        return self.kernel_ip6 if self.ipv6_underlay else self.kernel_ip4

    @property
    def nic_underlay_ip(self):
        """The NIC's end of the tunnel: ``nic_ip6`` or ``nic_ip4``."""
        return self.nic_ip6 if self.ipv6_underlay else self.nic_ip4

    def _config(self):
        return {k: getattr(self, k) for k in (
            "vni", "ipv6_underlay", "kernel_ip4", "nic_ip4", "kernel_ip6", "nic_ip6",
            "kernel_mac", "nic_mac", "vxlan_mac", "inner_ip", "inner_peer_ip",
            "inner_peer_mac", "inner_ip6", "inner_peer_ip6", "udp_csum")}

    # -- life cycle ----------------------------------------------------------------------------

    def start(self):
        """Start the agent and build the namespace; raise :exc:`KernelPeerError` on failure."""
        if self._proc is not None:
            raise KernelPeerError("the kernel peer is already running")
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "amnic.sim.kernel_peer", "--agent"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            close_fds=True)
        try:
            self._call("setup", wait=self.start_timeout, config=self._config())
        except KernelPeerError as exc:
            self.close()
            raise KernelPeerError(f"cannot start the kernel VXLAN peer: {exc}") from None
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        """Stop the agent (and with it the namespace). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    proc.stdin.write(b'{"op": "exit"}\n')
                    proc.stdin.flush()
                except OSError:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            for f in (proc.stdin, proc.stdout):
                f.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- the pipe ------------------------------------------------------------------------------

    def _agent_stderr(self):
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def _call(self, op, wait=5.0, **args):
        proc = self._proc
        if proc is None:
            raise KernelPeerError("the kernel peer is not running (use it as a context manager)")
        try:
            proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            raise KernelPeerError(f"the agent is gone ({exc}); its stderr:\n"
                                  f"{self._agent_stderr()}") from None
        deadline = time.monotonic() + wait + 5.0
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise KernelPeerError(f"no answer from the agent to {op!r} within "
                                      f"{wait + 5.0:.1f} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                proc.wait()
                raise KernelPeerError(f"the agent exited (status {proc.returncode}) during "
                                      f"{op!r}; its stderr:\n{self._agent_stderr()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise KernelPeerError(f"{op}: {reply['error']}")
        return reply

    # -- frames on the TAP ---------------------------------------------------------------------

    def send_frame(self, frame):
        """Hand ``frame`` (Ethernet, destination MAC first, no FCS) to the kernel as if it had
        arrived on the wire at the TAP."""
        frame = bytes(frame)
        if len(frame) < 14:
            raise ValueError(f"an Ethernet frame has at least 14 bytes, not {len(frame)}")
        self._call("send_frame", frame=frame.hex())

    def receive_frame(self, timeout=1.0, match=None):
        """The next frame the kernel transmitted on the TAP.

        Parameters
        ----------
        timeout : float
            Seconds to wait in total.
        match : callable, optional
            Predicate on the frame (``bytes``); frames for which it is false are discarded.

        Returns
        -------
        bytes or None
            The frame (no FCS), or ``None`` when none (matching) came in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            frame = self._call("receive_frame", wait=left, timeout=left)["frame"]
            if frame is None:
                return None
            frame = bytes.fromhex(frame)
            if match is None or match(frame):
                return frame

    def flush_frames(self):
        """Discard the frames the kernel has transmitted so far; return how many there were."""
        return self._call("flush_frames")["count"]

    # -- inner UDP sockets ---------------------------------------------------------------------

    def _need_inner_ip6(self, ipv6):
        if ipv6 and self.inner_ip6 is None:
            raise KernelPeerError("the peer has no inner IPv6 address (pass inner_ip6=...)")

    def listen_inner_udp(self, port, ipv6=False):
        """Bind a UDP socket to ``inner_ip:port`` (``inner_ip6`` when ``ipv6``) inside the
        namespace (idempotent); only datagrams arriving after this call can be received."""
        self._need_inner_ip6(ipv6)
        self._call("listen", port=port, ipv6=bool(ipv6))

    def send_inner_udp(self, payload, dport, sport, ipv6=False):
        """Send ``payload`` from ``inner_ip:sport`` to ``inner_peer_ip:dport`` (the IPv6
        addresses when ``ipv6``): the kernel routes it into the VXLAN device, which
        encapsulates it towards the NIC."""
        self._need_inner_ip6(ipv6)
        self._call("send_inner_udp", payload=bytes(payload).hex(), dport=dport, sport=sport,
                   ipv6=bool(ipv6))

    def receive_inner_udp(self, port, timeout=1.0, ipv6=False, with_tos=False):
        """The next datagram received on the socket of :meth:`listen_inner_udp` ``(port,
        ipv6)``.

        Returns
        -------
        (bytes, (str, int)) or (bytes, (str, int), int) or None
            The payload and the sender's address and port, followed with ``with_tos`` by the
            IPv4 TOS byte or IPv6 traffic class it arrived with (``IP_RECVTOS``,
            ``IPV6_RECVTCLASS``, RFC 3542 6.5), or ``None`` after ``timeout`` seconds.
        """
        reply = self._call("receive_inner_udp", wait=timeout, timeout=timeout, port=port,
                           ipv6=bool(ipv6))
        if reply["payload"] is None:
            return None
        got = bytes.fromhex(reply["payload"]), (reply["address"], reply["port"])
        return (*got, reply["tos"]) if with_tos else got

    # -- counters ------------------------------------------------------------------------------

    def link_stats(self, device=None):
        """Interface counters (``ip -s -j link``) of ``device`` (the VXLAN device by default):
        ``{"rx": {"packets", "bytes", "errors", "dropped", ...}, "tx": {...}}``."""
        return self._call("link_stats", device=device or self.vxlan_name)["stats"]

    def snmp(self):
        """The namespace's protocol counters from ``/proc/net/snmp`` and ``/proc/net/snmp6``
        as ``{"Udp": {"InDatagrams": n, "InCsumErrors": n, ...}, "Udp6": {...}, ...}``
        (keys without the ``Udp6`` prefix for the IPv6 ones)."""
        return self._call("snmp")["counters"]


# -- the agent ---------------------------------------------------------------------------------


class _SetupError(Exception):
    pass


def _run(*argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise _SetupError(f"{argv[0]!r} (iproute2) not found") from None
    if result.returncode:
        raise _SetupError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result.stdout


def _sysctl(path, value):
    with open(f"/proc/sys/net/{path}", "w") as f:
        f.write(f"{value}\n")


def _unshare_net():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        hint = (" — creating a network namespace needs CAP_SYS_ADMIN (run as root or in a "
                "container that allows it)" if err in (errno.EPERM, errno.EACCES) else "")
        raise _SetupError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}{hint}")


def _open_tap(name):
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _SetupError(f"cannot open /dev/net/tun: {exc}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise _SetupError(f"TUNSETIFF failed: {exc} — a TAP device needs CAP_NET_ADMIN") \
            from None
    return fd


class _Agent:
    def __init__(self):
        self.tap = None
        self.config = None
        self.sockets = {}

    def op_setup(self, config):
        if self.config is not None:
            raise _SetupError("already set up")
        for tool in ("ip", "bridge"):
            if shutil.which(tool) is None:
                raise _SetupError(f"the iproute2 command {tool!r} is not on PATH")
        _unshare_net()
        c = self.config = config
        # Nothing unprompted on the TAP: no DAD (RFC 4862 5.4), no router solicitations or
        # advertisement processing (RFC 4861 6.3.7), no link-local addresses.
        for scope in ("all", "default"):
            for key, value in (("disable_ipv6", 0), ("accept_dad", 0), ("dad_transmits", 0),
                               ("router_solicitations", 0), ("accept_ra", 0),
                               ("addr_gen_mode", 1)):
                _sysctl(f"ipv6/conf/{scope}/{key}", value)
            _sysctl(f"ipv4/conf/{scope}/rp_filter", 0)
        _run("ip", "link", "set", "lo", "up")
        self.tap = _open_tap(TAP_NAME)
        tap, vx = TAP_NAME, VXLAN_NAME
        _run("ip", "link", "set", tap, "address", c["kernel_mac"], "arp", "off")
        _run("ip", "addr", "add", f"{c['kernel_ip4']}/24", "dev", tap)
        _run("ip", "addr", "add", f"{c['kernel_ip6']}/64", "dev", tap, "nodad")
        _run("ip", "link", "set", tap, "up")
        for addr in (c["nic_ip4"], c["nic_ip6"]):
            _run("ip", "neigh", "replace", addr, "lladdr", c["nic_mac"], "dev", tap,
                 "nud", "permanent")
        local, remote = ((c["kernel_ip6"], c["nic_ip6"]) if c["ipv6_underlay"]
                         else (c["kernel_ip4"], c["nic_ip4"]))
        csum = [] if c["ipv6_underlay"] else ["udpcsum" if c["udp_csum"] else "noudpcsum"]
        _run("ip", "link", "add", vx, "address", c["vxlan_mac"], "type", "vxlan",
             "id", str(c["vni"]), "dstport", str(VXLAN_PORT), "local", local,
             "remote", remote, "dev", tap, "nolearning", *csum)
        if c["inner_ip6"] is not None:  # before the neighbours: NOARP rewrites them
            _run("ip", "link", "set", vx, "arp", "off")
        _run("ip", "addr", "add", f"{c['inner_ip']}/24", "dev", vx)
        _run("ip", "link", "set", vx, "up")
        _run("ip", "neigh", "replace", c["inner_peer_ip"], "lladdr", c["inner_peer_mac"],
             "dev", vx, "nud", "permanent")
        _run("bridge", "fdb", "replace", c["inner_peer_mac"], "dev", vx, "dst", remote,
             "self", "permanent")
        if c["inner_ip6"] is not None:
            _run("ip", "addr", "add", f"{c['inner_ip6']}/64", "dev", vx, "nodad")
            _run("ip", "neigh", "replace", c["inner_peer_ip6"], "lladdr", c["inner_peer_mac"],
                 "dev", vx, "nud", "permanent")
        return {}

    def _need_setup(self):
        if self.config is None:
            raise _SetupError("not set up")

    def op_send_frame(self, frame):
        self._need_setup()
        os.write(self.tap, bytes.fromhex(frame))
        return {}

    def op_receive_frame(self, timeout):
        self._need_setup()
        if select.select([self.tap], [], [], timeout)[0]:
            return {"frame": os.read(self.tap, 65536).hex()}
        return {"frame": None}

    def op_flush_frames(self):
        self._need_setup()
        count = 0
        while True:
            try:
                os.read(self.tap, 65536)
            except BlockingIOError:
                return {"count": count}
            count += 1

    def _addresses(self, ipv6):
        c = self.config
        if ipv6:
            if c["inner_ip6"] is None:
                raise _SetupError("no inner IPv6 address configured")
            return socket.AF_INET6, c["inner_ip6"], c["inner_peer_ip6"]
        return socket.AF_INET, c["inner_ip"], c["inner_peer_ip"]

    def _socket(self, port, ipv6):
        s = self.sockets.get((ipv6, port))
        if s is None:
            family, local, _ = self._addresses(ipv6)
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if ipv6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            s.bind((local, port))
            s.setblocking(False)
            self.sockets[(ipv6, port)] = s
        return s

    def op_listen(self, port, ipv6=False):
        self._need_setup()
        self._socket(port, ipv6)
        return {}

    def op_send_inner_udp(self, payload, dport, sport, ipv6=False):
        self._need_setup()
        family, local, peer = self._addresses(ipv6)
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((local, sport))
            s.sendto(bytes.fromhex(payload), (peer, dport))
        return {}

    def op_receive_inner_udp(self, port, timeout, ipv6=False):
        self._need_setup()
        s = self.sockets.get((ipv6, port))
        if s is None:
            raise _SetupError(f"no socket listens on inner port {port} (ipv6={ipv6}): call "
                              f"listen_inner_udp({port}) before the datagram arrives")
        if select.select([s], [], [], timeout)[0]:
            payload, ancillary, _, address = s.recvmsg(65536, socket.CMSG_SPACE(4))
            tos = None
            for level, kind, data in ancillary:
                if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TOS),
                                     (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)):
                    # IP_TOS comes as one byte, IPV6_TCLASS as a native int.
                    tos = data[0] if len(data) == 1 else int.from_bytes(data[:4], sys.byteorder)
            return {"payload": payload.hex(), "address": address[0], "port": address[1],
                    "tos": tos}
        return {"payload": None}

    def op_link_stats(self, device):
        self._need_setup()
        (info,) = json.loads(_run("ip", "-s", "-j", "link", "show", "dev", device))
        return {"stats": info["stats64"]}

    def op_snmp(self):
        counters = {}
        with open("/proc/net/snmp") as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            proto, *keys = names.split()
            counters[proto.rstrip(":")] = dict(zip(keys, map(int, values.split()[1:])))
        with open("/proc/net/snmp6") as f:
            for line in f:
                key, value = line.split()
                for proto in ("Udp6", "Ip6", "Icmp6", "UdpLite6"):
                    if key.startswith(proto) and not key.startswith(proto + "Lite"):
                        counters.setdefault(proto, {})[key[len(proto):]] = int(value)
                        break
        return {"counters": counters}


def _agent_main():
    """Serve requests from stdin until ``exit`` or end of input."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray output of anything else goes to stderr, not into the protocol
    agent = _Agent()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "exit":
            break
        try:
            reply = {"ok": True, **getattr(agent, f"op_{op}")(**request)}
        except (_SetupError, OSError, AttributeError, KeyError, ValueError, TypeError) as exc:
            reply = {"ok": False, "error": str(exc) or type(exc).__name__}
        channel.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--agent"]:
        _agent_main()
    else:
        sys.exit(f"usage: {sys.executable} -m amnic.sim.kernel_peer --agent "
                 f"(started by KernelVxlanPeer)")
