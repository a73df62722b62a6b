"""Network namespaces joined through DPDK net_af_packet ports (DESIGN.md section 9):

    [ns client: <c>i 192.0.2.1] <-veth-> <c>o ==sluiced== <s>o <-veth-> [ns server: <s>i 192.0.2.2]

The outer ends have ARP and IPv6 off (the host must not answer for them) and GRO off; the inner
ends have TX checksum offload off, so frames cross the appliance with real checksums. Everything is
named after a per-test tag, and removed by close(); nothing else on the host is touched."""
import ctypes
import os
import socket
import subprocess
import time


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def stop(proc, timeout=30):
    """Terminates a process started in the lab (sluiced, a sink), if it still runs, and waits for it."""
    if proc and proc.poll() is None:
        proc.terminate()
        proc.communicate(timeout=timeout)


def veth_pair(prefix):
    """A veth pair for a tap-mode sluiced: (the end sluiced reads, the end a test writes frames into),
    named PREFIX + "A"/"B" + a per-process tag, up, with IPv6 and ARP off (the host sends nothing
    of its own on it). Remove it with sh("ip", "link", "del", first, check=False)."""
    tag = str(os.getpid() % 100000)
    veth, peer = prefix + "A" + tag, prefix + "B" + tag
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
    for link in (veth, peer):
        sh("sysctl", "-qw", f"net.ipv6.conf.{link}.disable_ipv6=1", check=False)
        sh("ip", "link", "set", link, "arp", "off")
        sh("ip", "link", "set", link, "up")
    return veth, peer


def send_frames(ifname, frames):
    """Writes Ethernet frames into an interface (AF_PACKET)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        for fr in frames:
            s.send(fr)


def smtp_reply(f):
    """One SMTP reply (all its lines) read from a socket's binary file object."""
    lines = [f.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(f.readline())
    return b"".join(lines)


class BumpInTheWire:
    CLIENT_IP = "192.0.2.1"
    SERVER_IP = "192.0.2.2"

    def __init__(self, tag=None):
        tag = tag or str(os.getpid() % 100000)
        self.ns_client, self.ns_server = f"slc-c{tag}", f"slc-s{tag}"
        self.client_out, self.client_in = f"slcc{tag}o", f"slcc{tag}i"
        self.server_out, self.server_in = f"slcs{tag}o", f"slcs{tag}i"
        self.created = []
        try:
            self._side(self.ns_client, self.client_out, self.client_in, self.CLIENT_IP)
            self._side(self.ns_server, self.server_out, self.server_in, self.SERVER_IP)
        except Exception:
            self.close()
            raise

    def _side(self, ns, outer, inner, ip):
        sh("ip", "netns", "add", ns)
        self.created.append(ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("sysctl", "-qw", f"net.ipv6.conf.{outer}.disable_ipv6=1", check=False)
        sh("ip", "link", "set", outer, "arp", "off")
        sh("ethtool", "-K", outer, "gro", "off", check=False)
        sh("ip", "link", "set", outer, "up")
        self.netns(ns, "ip", "link", "set", "lo", "up")
        self.netns(ns, "ip", "addr", "add", ip + "/24", "dev", inner)
        self.netns(ns, "ethtool", "-K", inner, "tx", "off")
        self.netns(ns, "sysctl", "-qw", f"net.ipv6.conf.{inner}.disable_ipv6=1", check=False)
        self.netns(ns, "ip", "link", "set", inner, "up")

    @staticmethod
    def netns(ns, *cmd, check=True):
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    # TCP states in which a FIN has yet to cross the appliance in one direction or the other.
    OPEN_STATES = ("SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT")

    def wait_closed(self, port, timeout=10.0):
        """Wait until every connection to or from `port` in both namespaces has seen both FINs
        (only LAST-ACK, CLOSING and TIME-WAIT remain), so the appliance has forwarded them too.
        Returns the sockets still open when the time ran out (empty on success)."""
        deadline = time.monotonic() + timeout
        while True:
            still = []
            for ns in (self.ns_client, self.ns_server):
                out = self.netns(ns, "ss", "-Htan", check=False).stdout
                for line in out.splitlines():
                    cols = line.split()
                    if len(cols) >= 5 and cols[0] in self.OPEN_STATES and \
                            (cols[3].endswith(f":{port}") or cols[4].endswith(f":{port}")):
                        still.append(f"{ns}: {line}")
            if not still or time.monotonic() > deadline:
                return still
            time.sleep(0.05)

    def sluiced_yaml(self, events, extra="", lcores="{main: 0, rx: [1]}"):
        """sluiced's configuration for inline mode between the two outer ends, `extra` appended."""
        return (f"mode: inline\nports:\n  - name: client\n    device: net_af_packet0,iface={self.client_out}\n"
                f"  - name: server\n    device: net_af_packet1,iface={self.server_out}\npairs:\n  - [client, server]\n"
                f"lcores: {lcores}\neal: {{memory_mb: 256}}\nevents: {{path: {events}}}\n" + extra)

    def start_sluiced(self, binary, config_path):
        """Starts sluiced and waits for its 'running in inline mode' line; raises with its stderr."""
        proc = subprocess.Popen([binary, "--config", config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        line = proc.stdout.readline()
        if "running in inline mode" not in line:
            proc.kill()
            raise RuntimeError("sluiced did not start: " + line + proc.stderr.read())
        return proc

    def client_connect(self, port, timeout=30):
        """A TCP connection to the server's address from the client namespace (only the socket is
        made there: the calling thread joins the namespace for the call and comes back)."""
        libc = ctypes.CDLL(None, use_errno=True)
        clone_newnet = 0x40000000
        fd = os.open("/run/netns/" + self.ns_client, os.O_RDONLY)
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, clone_newnet) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            return socket.create_connection((self.SERVER_IP, port), timeout=timeout)
        finally:
            libc.setns(own, clone_newnet)
            os.close(fd)
            os.close(own)

    def popen(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + list(cmd), **kw)

    def close(self):
        # Deleting an outer end deletes its pair at once; a namespace's own teardown is lazy.
        for link in (self.client_out, self.server_out):
            sh("ip", "link", "del", link, check=False)
        for ns in reversed(self.created):
            sh("ip", "netns", "del", ns, check=False)
        self.created = []
