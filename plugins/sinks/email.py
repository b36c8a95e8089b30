"""Email over SMTP (standard library): STARTTLS on 587 by default, implicit TLS on 465
(``security: ssl``) or plain (``security: none``, for a local MTA on port 25).

Mail cannot be deduplicated by the server, so this is a chat-style sink (new, escalated,
resolved), and messages thread: the first message about a finding has a Message-ID derived from
the fingerprint and the time the finding was first seen, later ones answer it with
``In-Reply-To``/``References``. A retried event keeps its Message-ID. Every message says
``Auto-Submitted: auto-generated`` (RFC 3834) so vacation responders stay quiet.

SMTP 4xx replies and network trouble are retried later; 5xx replies are permanent.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from memdiag.delivery.sink import (
    Context, PermanentError, TransientError, headline, option, plain_text, socket_timeout, update_note,
)


def _domain(host: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in host.lower()).strip(".-")
    return f"{safe or 'localhost'}.memdiag.invalid"


def root_message_id(finding: dict, first_seen: str) -> str:
    """Stable for one episode of a finding: same fingerprint and first-seen time, same id."""
    episode = hashlib.sha256(f"{finding.get('fingerprint')}|{first_seen}".encode()).hexdigest()[:16]
    return f"<memdiag.{finding.get('fingerprint')}.{episode}@{_domain(finding.get('host', ''))}>"


class EmailSink:
    style = "chat"
    secret_options = ("password",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.host = option(options, "host", str, required=True)
        self.security = option(options, "security", str, "starttls")
        if self.security not in ("starttls", "ssl", "none"):
            raise ValueError("option 'security' must be starttls, ssl or none")
        self.port = option(options, "port", int, {"starttls": 587, "ssl": 465, "none": 25}[self.security])
        self.username = option(options, "username", str)
        self.password = option(options, "password", str)
        self.sender = option(options, "from", str, required=True)
        to = options.get("to")
        self.to = [to] if isinstance(to, str) else [str(t) for t in (to or [])]
        if not self.to:
            raise ValueError("option 'to' needs at least one address")
        self.subject_prefix = option(options, "subject_prefix", str, "")
        if self.username and not self.password:
            raise ValueError("'username' needs 'password' (as ${VAR} or password_file)")

    def message(self, action: str, finding: dict, ctx: Context) -> tuple[EmailMessage, str]:
        root = ctx.meta.get("message_id") or ctx.remote_id or root_message_id(finding, ctx.first_seen)
        msg = EmailMessage()
        subject = headline(finding, action, ctx.test)
        if action == "trigger":
            msg_id = root
        else:
            subject = "Re: " + headline(finding, "trigger", ctx.test)
            tag = hashlib.sha256(ctx.event_id.encode()).hexdigest()[:12]
            msg_id = root.replace("@", f".{tag}@", 1)
            msg["In-Reply-To"] = root
            msg["References"] = root
        msg["Subject"] = (self.subject_prefix + " " if self.subject_prefix else "") + subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = msg_id
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Memdiag-Fingerprint"] = str(finding.get("fingerprint", ""))
        msg["X-Memdiag-Action"] = action
        if action == "resolve":
            body = f"Resolved: memdiag no longer finds this on {finding.get('host', '?')}.\n\n" + plain_text(finding, action)
        elif action == "update":
            body = update_note(finding, ctx) + "\n\n" + plain_text(finding, action)
        else:
            body = plain_text(finding, action)
        msg.set_content(body)
        return msg, root

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        msg, root = self.message(action, finding, ctx)
        ctx.meta["message_id"] = root
        if ctx.dry_run:
            ctx.show(f"SMTP {self.host}:{self.port} ({self.security}) MAIL FROM:<{self.sender}> "
                     f"RCPT TO:{', '.join('<' + t + '>' for t in self.to)}\n\n{msg.as_string()}")
            return root
        self._send(msg, ctx)
        return root

    def _send(self, msg: EmailMessage, ctx: Context) -> None:
        timeout = socket_timeout(ctx)
        context = ssl.create_default_context(cafile=getattr(ctx.http, "ca_file", None))
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                # a partial refusal still delivered the mail: re-sending would duplicate it
                smtp.send_message(msg, from_addr=self.sender, to_addrs=self.to)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"SMTP {self.host}: every recipient refused ({_codes(exc.recipients)})") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP {self.host}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentError(f"SMTP {self.host}: the server does not offer STARTTLS or AUTH") from None
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {self.host}: {exc.smtp_code} {_text(exc.smtp_error)}"
            raise (PermanentError(text) if exc.smtp_code >= 500 else TransientError(text)) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"SMTP {self.host}: TLS certificate not trusted: {exc.verify_message}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _codes(recipients: dict) -> str:
    return ", ".join(f"{addr}: {code}" for addr, (code, _msg) in recipients.items())
