"""Assisted mapping: for an action's inputs no row maps yet, source expressions ranked
by how likely they are what was meant, each with the value it gives on the sample.

Three signals, each 0..1, weighed into one score:

- **name**: how close the input's name (and help) is to the sample field's name and
  its parent's, by rapidfuzz's token-set ratio over the words of both (``OrderNumber``,
  ``order_number`` and ``order number`` are the same words), widened by a small
  lexicon of the words two systems use for one thing (total/amount, zip/postal code);
- **value**: whether the sample's value fits the input (a number for an amount, an
  ISO code for a country, an ``@`` for an email, an object for an object);
- **use**: whether an existing mapping already reads that field for that input.

Pure: the sample is read, nothing is written. An optional scorer (the ``[ai]``
extra, see :func:`semantic_scorer`) can add a semantic similarity of names.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from rapidfuzz import fuzz

from integrations.kernel.countries import country_alpha2
from integrations.kernel.redaction import is_sensitive_key

WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
logger = logging.getLogger(__name__)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Words two systems use for one thing (each group is one meaning).
LEXICON: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "amount total sum price value grand",
        "currency iso currencycode",
        "email mail",
        "phone telephone mobile tel phonenumber",
        "postal zip postcode postalcode zipcode",
        "country nation countrycode",
        "state province region statecode",
        "city town locality cityname",
        "line1 address1 street addr1",
        "line2 address2 addr2",
        "name fullname",
        "first given firstname",
        "last family surname lastname",
        "number no num",
        "id identifier key",
        "user customer account shopper",
        "order purchase",
        "description note comment instructions remarks",
        "shipping delivery ship",
        "billing bill invoice",
    )
)
_MEANING = {word: group for group in LEXICON for word in group}

WEIGHTS = {"name": 0.6, "value": 0.25, "use": 0.15}


@dataclass(frozen=True)
class Suggestion:
    target: str
    source: str
    transform: str
    score: float
    value: Any
    why: str


def words(name: str) -> list[str]:
    """``OrderNumber`` / ``order_number`` / ``billing.postal_code`` → their words."""
    return [w.lower() for w in WORD.findall(name.replace("_", " ").replace(".", " "))]


def _meanings(tokens: list[str]) -> str:
    """The words, each joined by the other words of its meaning."""
    out = []
    for token in tokens:
        out.extend(sorted(_MEANING.get(token, {token})))
    return " ".join(out)


def name_score(target: str, path: str, help_text: str = "") -> float:
    """0..1: how close an input's name is to a field's path (its last part counts
    most, its parent's words help: ``billing.postal_code`` for ``address.postal_code``)."""
    target_words = words(target)
    parts = path.split(".")
    leaf = words(parts[-1])
    context = words(" ".join(parts[:-1][-2:]))
    best = fuzz.token_set_ratio(_meanings(target_words), _meanings(leaf)) / 100
    joined = fuzz.token_set_ratio(_meanings(target_words), _meanings(leaf + context)) / 100
    score = max(best, joined * 0.95)
    if help_text:
        score = max(score, fuzz.token_set_ratio(help_text.lower(), " ".join(leaf)) / 100 * 0.8)
    return score


def _decimal(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        return False
    return isinstance(value, str) and bool(value.strip())


def value_score(target: str, type_text: str, value: Any) -> tuple[float, str]:
    """0..1 for how well the sample's value fits the input, and the transform that
    would make it fit ("" for none)."""
    names = set(words(target))
    kind = type_text.replace(" ", "").lower()
    if isinstance(value, dict | list):
        return (1.0 if kind.startswith(("dict", "list")) else 0.0), ""
    if value is None or value == "":
        return 0.2, ""
    if names & {"email"}:
        return (1.0 if "@" in str(value) else 0.0), ""
    if names & {"country"}:
        return (1.0 if country_alpha2(str(value)) else 0.1), ""
    if names & {"currency"}:
        text = str(value)
        return (
            1.0 if len(text) == 3 and text.isalpha() else 0.1
        ), "lower" if text.isupper() else ""
    if kind.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return 1.0, ""
        return (0.9, "int") if str(value).isdigit() else (0.0, "")
    if names & {"id"}:  # a text id: Stripe's ch_…, a GUID, a number
        return (0.8 if str(value).strip() and not isinstance(value, bool) else 0.1), ""
    if names & {"amount", "total", "price", "minor"} or kind.startswith(("decimal", "float")):
        return (1.0 if _decimal(value) else 0.0), "decimal" if kind.startswith("decimal") else ""
    if kind.startswith("bool"):
        return (1.0 if isinstance(value, bool) else 0.3), "bool"
    return 0.7, ""  # a text input takes any scalar


def sample_paths(document: Any, prefix: str = "", depth: int = 6) -> Iterator[tuple[str, Any]]:
    """Every field of the sample as a JMESPath expression and its value (objects too,
    for inputs that take an object); lists are read at their first item."""
    if depth < 0 or not isinstance(document, dict):
        return
    for key, value in document.items():
        if is_sensitive_key(key):
            continue  # a secret is never proposed (nor shown)
        text = str(key).replace("\\", "\\\\").replace('"', '\\"')
        part = str(key) if IDENTIFIER.match(str(key)) else f'"{text}"'
        path = f"{prefix}.{part}" if prefix else part
        yield path, value
        if isinstance(value, dict):
            yield from sample_paths(value, path, depth - 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            yield from sample_paths(value[0], f"{path}[0]", depth - 1)


Scorer = Callable[[str, str], float]


class _Semantic:
    """Cosine similarity (0..1) of two names' words, by a word-embedding model; each
    phrase is embedded once and kept."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vectors: dict[str, Any] = {}

    def vector(self, name: str) -> Any:
        phrase = " ".join(words(name)) or name
        if phrase not in self.vectors:
            self.vectors[phrase] = self.model.embed([phrase], norm=True)[0]
        return self.vectors[phrase]

    def __call__(self, a: str, b: str) -> float:
        return max(0.0, min(1.0, float(self.vector(a) @ self.vector(b))))


@functools.cache
def _embedding_model() -> Any | None:
    """The ``[ai]`` extra's model: WordLlama's 256-dimension ``l2_supercat``, whose
    weights and tokenizer ship inside the installed wheel. Loaded from the package's
    own folder with downloads disabled: it never reaches the network. None when the
    extra is not installed (or its files are missing)."""
    try:
        import wordllama
    except ImportError:
        return None
    home = Path(wordllama.__file__).parent
    try:
        return wordllama.WordLlama.load(cache_dir=home, disable_download=True)
    except (OSError, ValueError) as exc:  # FileNotFoundError: a wheel without the model
        logger.warning("the [ai] extra's model could not be loaded: %s", exc)
        return None


def semantic_scorer() -> Scorer | None:
    """The ``[ai]`` extra's scorer of two names' meaning (0..1), when installed and not
    turned off (``MAPPING_ASSIST_SEMANTIC``). None otherwise: suggestions then rank by
    names, values and use alone."""
    if not settings.INTEGRATIONS["MAPPING_ASSIST_SEMANTIC"]:
        return None
    model = _embedding_model()
    return _Semantic(model) if model is not None else None


def suggest(
    inputs: list[Any],
    document: dict[str, Any],
    *,
    mapped: set[str] = frozenset(),
    usage: Counter | None = None,
    per_input: int = 3,
    semantic: Scorer | None = None,
) -> dict[str, list[Suggestion]]:
    """For each input (``InputSpec``: name, type, help) not in ``mapped``, the best
    ``per_input`` fields of the sample, best first. ``usage``: how often existing
    mappings map (input, source)."""
    usage = usage or Counter()
    paths = list(sample_paths(document))
    most_used = max(usage.values(), default=0)
    out: dict[str, list[Suggestion]] = {}
    for spec in inputs:
        if spec.name in mapped:
            continue
        ranked: list[Suggestion] = []
        for path, value in paths:
            name = name_score(spec.name, path, getattr(spec, "help", ""))
            if semantic is not None:
                leaf = path.split(".")[-1]
                name = max(name, semantic(spec.name, leaf))
                if help_text := getattr(spec, "help", ""):
                    name = max(name, semantic(help_text, leaf) * 0.8)
            fit, transform = value_score(spec.name, getattr(spec, "type", ""), value)
            used = usage.get((spec.name, path), 0) / most_used if most_used else 0.0
            score = WEIGHTS["name"] * name + WEIGHTS["value"] * fit + WEIGHTS["use"] * used
            why = f"name {name:.2f}, value {fit:.2f}" + (f", used {used:.2f}" if used else "")
            ranked.append(Suggestion(spec.name, path, transform, round(score, 3), value, why))
        ranked.sort(key=lambda s: (-s.score, len(s.source)))
        out[spec.name] = ranked[:per_input]
    return out


def mapping_usage() -> Counter:
    """(input, source) pairs the stored mappings use, counted."""
    from integrations.models import MappingField

    rows = MappingField.objects.exclude(source="").values_list("target", "source")
    return Counter((target.split(".")[0], source) for target, source in rows)
