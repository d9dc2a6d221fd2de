"""One rule for every name a person types (a class, a person, a project), with a message they can act on."""

from __future__ import annotations

import unicodedata

from vision_backend.errors import InvalidName

MAX_NAME = 100
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
"""Characters that reorder the text around them: a name could then show as another name."""
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, lone surrogates, private use, unassigned, line and paragraph separators. Other format characters
stay: the zero-width joiners that Persian, Devanagari and emoji sequences need ("محمد‌رضا", "👩‍👩‍👧")."""


def allowed(character: str) -> bool:
    """True for a character a name may hold (see ``REFUSED_CATEGORIES``; spaces other than the plain one too)."""
    category = unicodedata.category(character)
    return category not in REFUSED_CATEGORIES and character not in BIDI_CONTROLS and \
        (category != "Zs" or character == " ")


def check_name(name: str, what: str = "name") -> str:
    """``name`` stripped, or :class:`InvalidName` if it cannot name a class, person or project.

    No controls or separators, no slashes, at most 100 characters and 255 bytes, no leading dot, not
    ``__MACOSX``: names become folder names in exports, and a name must never leave its folder.
    """
    if not isinstance(name, str):
        raise InvalidName(f"A {what} must be text.")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise InvalidName(f"Give the {what} a name.")
    if len(cleaned) > MAX_NAME:
        raise InvalidName(f"A {what} has at most {MAX_NAME} characters ({len(cleaned)} given).")
    if any(c in "/\\" for c in cleaned):
        raise InvalidName(f"A {what} cannot contain a slash (/) or a backslash.")
    if not all(allowed(c) for c in cleaned):
        raise InvalidName(f"A {what} cannot contain control characters (new lines, tabs, NUL) or characters "
                          "that reorder the text.")
    if cleaned in (".", "..") or cleaned.startswith("."):
        raise InvalidName(f"A {what} cannot start with a dot.")
    if cleaned == "__MACOSX":
        raise InvalidName(f"A {what} cannot be __MACOSX (ZIP tools keep macOS metadata there).")
    if len(cleaned.encode()) > 255:
        raise InvalidName(f"A {what} is at most 255 bytes as a file name; this one is {len(cleaned.encode())}.")
    return cleaned


def safe_part(name: str, fallback: str = "file", limit: int = 120) -> str:
    """Any text made into one harmless path component (for names inside exported archives)."""
    cleaned = "".join(c if allowed(c) and c not in "/\\" else "_" for c in unicodedata.normalize("NFC", name))
    cleaned = cleaned.strip().lstrip(".") or fallback
    while len(cleaned.encode()) > limit:
        cleaned = cleaned[:-1]
    return cleaned
