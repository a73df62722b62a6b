"""A real SMTP server (aiosmtpd) that stores every accepted message, exactly as received after
dot-unstuffing, as <dir>/<n>.eml, with the envelope in <n>.json. Prints 'ready' once listening."""
import argparse
import asyncio
import json
import os

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Ok: stored"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    controller = Controller(Store(a.dir), hostname=a.listen, port=a.port, data_size_limit=64 * 1024 * 1024)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
