#!/usr/bin/env python3
"""An SMTP server for ftprelay's mail tests: aiosmtpd on 127.0.0.1, a port
chosen by the OS.

It prints `PORT n` once listening. Each message it accepts is parsed with
Python's own `email` package (the way a mail client reads it) and written
to OUT as what a user checks:

  OUT/N.body           the text part
  OUT/N.K.bin          the bytes of attachment K (decoded)
  OUT/N.txt            lines `key value`, written last (renamed into place):
                         envelope_from ADDR, envelope_to ADDR (each),
                         from, to, subject (decoded headers),
                         tls yes|no, auth USER|-,
                         attachment K CONTENT-TYPE FILENAME (each)

Options: --tls-cert/--tls-key (STARTTLS offered; --require-starttls makes it
required), --implicit-tls (TLS from the first byte, with the same files),
--auth USER:PASS (AUTH LOGIN/PLAIN, required; allowed without TLS),
--answer-data 'CODE TEXT' (answer DATA with that instead of accepting),
--answer-mail 'CODE TEXT' and --answer-rcpt 'CODE TEXT' (answer MAIL FROM,
or every RCPT TO, with that instead of accepting),
--delay-replies SECONDS (wait that long before each reply). Each connection
that ends appends a line to OUT/closed.
"""

import argparse
import asyncio
import email
import email.policy
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--answer-data")
    parser.add_argument("--answer-mail")
    parser.add_argument("--answer-rcpt")
    parser.add_argument("--delay-replies", type=float, default=0.0)
    return parser.parse_args()


class Handler:
    def __init__(self, out, answer, answer_mail=None, answer_rcpt=None):
        self.out = out
        self.answer = answer
        self.answer_mail = answer_mail
        self.answer_rcpt = answer_rcpt
        self.count = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.answer_mail:
            return self.answer_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.answer_rcpt:
            return self.answer_rcpt
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.answer:
            return self.answer
        n = self.count
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        lines = ["envelope_from " + envelope.mail_from]
        lines += ["envelope_to " + to for to in envelope.rcpt_tos]
        lines.append("from " + str(message["From"]))
        lines.append("to " + str(message["To"]))
        lines.append("subject " + str(message["Subject"]))
        # session.ssl is set by STARTTLS; implicit TLS shows on the transport.
        tls = session.ssl or server.transport.get_extra_info("ssl_object")
        lines.append("tls " + ("yes" if tls else "no"))
        login = session.auth_data.login if session.authenticated else None
        lines.append("auth " + (login.decode() if login else "-"))
        body = message.get_body(preferencelist=("plain",))
        with open(os.path.join(self.out, f"{n}.body"), "w", encoding="utf-8") as f:
            f.write(body.get_content() if body is not None else "")
        for k, part in enumerate(message.iter_attachments()):
            with open(os.path.join(self.out, f"{n}.{k}.bin"), "wb") as f:
                f.write(part.get_payload(decode=True))
            lines.append(f"attachment {k} {part.get_content_type()} {part.get_filename()}")
        temporary = os.path.join(self.out, f".{n}.txt")
        with open(temporary, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(temporary, os.path.join(self.out, f"{n}.txt"))
        return "250 OK"


def main():
    # AUTH without TLS is what the test of AUTH wants; say nothing of it.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    args = parse_args()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    authenticator = None
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == user.encode()
                and auth_data.password == password.encode()
            )
            # handled=False: aiosmtpd answers 535 itself (with the
            # default, True, it would answer nothing and the client wait).
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    handler = Handler(args.out, args.answer_data, args.answer_mail, args.answer_rcpt)

    class Server(SMTP):
        async def push(self, status):
            if args.delay_replies:
                await asyncio.sleep(args.delay_replies)
            await super().push(status)

        def connection_lost(self, error):
            super().connection_lost(error)
            with open(os.path.join(args.out, "closed"), "a", encoding="utf-8") as f:
                f.write("closed\n")

    def factory():
        return Server(
            handler,
            hostname="smtp.test",
            tls_context=None if args.implicit_tls else context,
            require_starttls=args.require_starttls,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=False,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host="127.0.0.1",
            port=0,
            ssl=context if args.implicit_tls else None,
        )
    )
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
