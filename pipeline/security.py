"""How the Kafka clients authenticate and encrypt: one setting for every client library.

The worker talks to Kafka through three client libraries (aiokafka in the batch engine, Faust
in the Faust engine, kafka-python in ``replay``/``alerts``/``topics`` and the start-up topic
check). :class:`KafkaSecurity` is validated once and turned into each library's arguments, so
a worker never starts half-secured (e.g. consuming over SASL but checking topics in plaintext).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineConfigError

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaSecurity"]

#: ``kafka.security_protocol`` values (Kafka's names).
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: ``kafka.sasl_mechanism`` values every client library here supports.
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """Kafka client security settings (``kafka.security_protocol`` and friends).

    Parameters
    ----------
    protocol : str
        ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
    sasl_mechanism : str
        ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (SASL protocols only).
    sasl_username, sasl_password : str
        SASL credentials; the password comes from the environment only
        (``ECGWATCH_KAFKA__SASL_PASSWORD``), never from the YAML file.
    ssl_cafile : str
        CA bundle that signs the brokers' certificates (default: the system's).
    ssl_certfile, ssl_keyfile : str
        Client certificate and key, for brokers that require mutual TLS.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise PipelineConfigError(
                f"kafka.security_protocol: {self.protocol!r} is not one of {list(PROTOCOLS)}"
            )
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise PipelineConfigError(
                    f"kafka.sasl_mechanism: {self.sasl_mechanism!r} is not one of "
                    f"{list(MECHANISMS)}"
                )
            if not self.sasl_username or not self.sasl_password:
                missing = "kafka.sasl_username" if not self.sasl_username else "the password"
                raise PipelineConfigError(
                    f"kafka.security_protocol: {self.protocol} needs a username and a password; "
                    f"{missing} is empty (set kafka.sasl_username and the environment variable "
                    "ECGWATCH_KAFKA__SASL_PASSWORD)"
                )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise PipelineConfigError(
                "kafka.ssl_certfile / kafka.ssl_keyfile: give both (mutual TLS) or neither; "
                f"got certfile={self.ssl_certfile!r}, keyfile={self.ssl_keyfile!r}"
            )

    @property
    def uses_sasl(self) -> bool:
        """Whether the protocol authenticates with SASL."""
        return self.protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        """Whether the protocol encrypts with TLS."""
        return self.protocol.endswith("SSL")

    def __repr__(self) -> str:
        # Never print the password (settings end up in logs and error messages).
        shown = "***" if self.sasl_password else ""
        return (
            f"KafkaSecurity(protocol={self.protocol!r}, sasl_mechanism={self.sasl_mechanism!r}, "
            f"sasl_username={self.sasl_username!r}, sasl_password={shown!r}, "
            f"ssl_cafile={self.ssl_cafile!r})"
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (None for the non-TLS protocols)."""
        if not self.uses_ssl:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's and kafka-python's clients (same names in both)."""
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            out["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            out.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return out

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for ``faust.App`` (None for PLAINTEXT)."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        return faust.SSLCredentials(self.ssl_context())
