"""Online/offline detection for the Hugging Face hub: offline users get an answer in seconds."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def hub_offline_error(what: str, name: str, err: Exception | None = None) -> str:
    """The message for a hub resource (``what`` named ``name``) that cannot be reached."""
    return (
        f"{what} {name!r} must come from the Hugging Face hub, which is unreachable here "
        f"({type(err).__name__ if err else 'offline mode'}). Use the packaged defaults "
        f"(backbone 'minilm-l6', tasks 'rotten_tomatoes'/'imdb') or a local folder/file."
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers within ``timeout`` seconds.

    Honours ``HF_HUB_OFFLINE``; otherwise opens one TCP connection to the hub's endpoint,
    so that offline users get an answer in seconds rather than after ~23 s of retries.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    from huggingface_hub import constants  # heavy: only when a hub resource is asked for

    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
