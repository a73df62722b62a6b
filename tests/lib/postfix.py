"""A private Postfix instance for end-to-end tests: its own configuration, queue, log and Maildir
under a test directory, listening on one address inside a network namespace, accepting mail for
example.net into one Maildir. Nothing of the host's Postfix (/etc/postfix/main.cf, its queue) is
used or touched. Started by the test, stopped by it (stop() also on failure)."""
import glob
import os
import shutil
import subprocess
import time

MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def available():
    return shutil.which("postfix") is not None and os.path.exists("/usr/lib/postfix/sbin/master")


class Postfix:
    def __init__(self, workdir, ip, netns=None, tls_cert=None, tls_key=None, extra=None):
        """workdir: an empty directory; ip: the address smtpd listens on; netns: the namespace
        (`ip netns exec`) to run in; tls_cert/tls_key: offer STARTTLS with them."""
        self.dir = workdir
        self.conf = os.path.join(workdir, "conf")
        self.queue = os.path.join(workdir, "queue")
        self.data = os.path.join(workdir, "data")
        self.mail = os.path.join(workdir, "mail")
        self.log = os.path.join(workdir, "maillog")
        self.netns = netns
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d, exist_ok=True)
        shutil.chown(self.data, "postfix", "postfix")
        shutil.chown(self.mail, "nobody", "nogroup")
        os.chmod(workdir, 0o755)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF)
        nobody = 65534
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.example.net",
            "mydomain": "example.net",
            "myorigin": "example.net",
            "mydestination": "",
            "inet_interfaces": ip,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": "example.net",
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps": "static:Maildir/",
            "virtual_uid_maps": "static:%d" % nobody,
            "virtual_gid_maps": "static:%d" % nobody,
            "virtual_minimum_uid": "100",
            "maillog_file": self.log,
            "maillog_file_prefixes": workdir,
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "smtputf8_enable": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "message_size_limit": "52428800",
            "virtual_mailbox_limit": "0",
            "shlib_directory": "/usr/lib/postfix",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "smtpd_forbid_bare_newline": "yes",
        }
        if tls_cert:
            settings.update({"smtpd_tls_cert_file": tls_cert, "smtpd_tls_key_file": tls_key,
                             "smtpd_tls_security_level": "may"})
        settings.update(extra or {})
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))

    def _run(self, *args, check=True):
        cmd = ["postfix", "-c", self.conf] + list(args)
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, check=check)

    def start(self):
        r = self._run("start", check=False)
        if r.returncode != 0:
            raise RuntimeError("postfix did not start: " + r.stdout + r.stderr + self.log_text())
        # Ready when the master has written its pid and smtpd's port answers.
        for _ in range(100):
            if os.path.exists(os.path.join(self.queue, "pid", "master.pid")):
                break
            time.sleep(0.05)
        return self

    def stop(self):
        self._run("stop", check=False)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def delivered(self):
        """The messages in the Maildir, oldest first (their bytes)."""
        files = glob.glob(os.path.join(self.mail, "Maildir", "new", "*")) + \
            glob.glob(os.path.join(self.mail, "Maildir", "cur", "*"))
        out = []
        for p in sorted(files, key=os.path.getmtime):
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def wait_delivered(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.1)
        return self.delivered()
