#!/usr/bin/python3
"""A real SMTP server (aiosmtpd, Debian's python3-aiosmtpd) that signs clients in with XOAUTH2
and nothing else, as Microsoft 365 and Google Workspace do, for driftwatch's tests.

    xoauth2_smtp.py PORT INTROSPECT_URL

Each sign-in's token is checked with the test's token endpoint (GET INTROSPECT_URL?token=T&user=U
answers 200 for a token it issued to that mailbox and has not revoked); a refused one gets
"535 5.7.8". The token is checked again at each MAIL FROM: one revoked since the connection
signed in gets "530 5.7.0", as a server that ends such sessions answers. Prints "ready" once listening, then one JSON line per message accepted:
{"user": ..., "token": ..., "to": [...], "data": ...}. Stops when its standard input closes.
"""

import asyncio
import base64
import json
import sys
import urllib.parse
import urllib.request

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, introspect):
        self.introspect = introspect

    def valid(self, user, token):
        query = urllib.parse.urlencode({"token": token, "user": user})
        try:
            with urllib.request.urlopen(f"{self.introspect}?{query}", timeout=5) as answer:
                return answer.status == 200
        except Exception:
            return False

    async def auth_XOAUTH2(self, server, args):
        # AUTH XOAUTH2 <base64 of "user=U\x01auth=Bearer T\x01\x01">, the initial response.
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            text = base64.b64decode(args[1], validate=True).decode()
        except Exception:
            return AuthResult(success=False, handled=False)
        fields = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
        user = fields.get("user", "")
        bearer = fields.get("auth", "")
        if not text.endswith("\x01\x01") or not bearer.startswith("Bearer "):
            return AuthResult(success=False, handled=False)
        token = bearer[len("Bearer "):]
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.valid, user, token):
            return AuthResult(success=True, auth_data={"user": user, "token": token})
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # A token revoked since this connection signed in no longer sends: sign in again.
        signed_in = session.auth_data or {}
        loop = asyncio.get_running_loop()
        user, token = signed_in.get("user", ""), signed_in.get("token", "")
        if not await loop.run_in_executor(None, self.valid, user, token):
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        signed_in = session.auth_data or {}
        print(
            json.dumps(
                {
                    "user": signed_in.get("user"),
                    "token": signed_in.get("token"),
                    "to": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 2.0.0 OK"


def main():
    port, introspect = int(sys.argv[1]), sys.argv[2]
    controller = Controller(
        Handler(introspect),
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        # Plain text on the loopback interface in tests; real servers require TLS first.
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN", "LOGIN"],
    )
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
