"""sluicectl (issue 15), the commands that need no running appliance: `token new --role admin|read`
prints a new token alone on its first line and the token file line (`ROLE sha256:HEX`, HEX the
SHA-256 of the token) on its second; `token hash` gives that line for a token read from standard
input; a bad command line exits 2 with the usage; a token is never an option."""
import hashlib
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402

SLUICECTL = os.path.abspath(os.path.join(sluiced.BUILD, "control", "sluicectl"))


def ctl(*args, stdin=None):
    return subprocess.run([SLUICECTL, *args], input=stdin, capture_output=True, text=True, timeout=30)


class Sluicectl(unittest.TestCase):
    def test_token_new_prints_the_token_then_its_line(self):
        seen = set()
        for role in ("admin", "read", "admin"):
            r = ctl("token", "new", "--role", role)
            self.assertEqual(r.returncode, 0, r.stderr)
            token, line = r.stdout.splitlines()
            self.assertRegex(token, r"^sluice_[A-Za-z0-9_-]{43}$")
            self.assertEqual(line, f"{role} sha256:" + hashlib.sha256(token.encode()).hexdigest())
            seen.add(token)
        self.assertEqual(len(seen), 3)

    def test_token_hash_reads_the_token_from_standard_input(self):
        r = ctl("token", "hash", "--role", "read", stdin="my own token\n")
        self.assertEqual((r.returncode, r.stdout), (0, "read sha256:" + hashlib.sha256(b"my own token").hexdigest() + "\n"))
        self.assertEqual(ctl("token", "hash", "--role", "read", stdin="").returncode, 1)

    def test_a_bad_command_line_exits_2_with_the_usage(self):
        for args, says in ((["token", "new"], "needs --role"), (["token", "new", "--role", "root"], "is not admin or read"),
                           ([], "no command"), (["frobnicate"], "unknown command 'frobnicate'"),
                           (["token", "new", "--role", "admin", "--token", "x"], "unrecognised option")):
            r = ctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(says, r.stderr)
            self.assertTrue(re.search(r"^usage: sluicectl \[--url URL\] \[--token-file FILE\] COMMAND", r.stderr, re.M))
        self.assertEqual(ctl("--help").returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
