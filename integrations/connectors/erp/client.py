"""Generic REST ERP client: journal entries and credit memos keyed by external reference.

The wire contract (what ``sandbox/erp`` implements, and what a real ERP's REST layer
or an iPaaS endpoint usually offers) is:

    POST {base}/api/journal-entries   {external_reference, date, currency, memo, lines[]}
    GET  {base}/api/journal-entries?external_reference=REF   → {"results": [...]}
    GET  {base}/api/journal-entries?date_from=DAY&page_size=500
                                      → {"results": [...], "count": N, "next": URL | null}
    POST {base}/api/credit-memos      {external_reference, customer_reference, date,
                                       currency, amount, memo, lines?}
    GET  {base}/api/credit-memos?external_reference=REF
    GET  {base}/api/trial-balance

The external reference is the idempotency key: it is sent as ``Idempotency-Key`` too,
and a repeated post answers 200 with the stored document.

To adapt a specific ERP, subclass :class:`ErpClient` and override what differs:
``paths`` (endpoint locations), ``encode_journal_entry()`` / ``encode_credit_memo()``
(our document → the ERP's body), ``decode_document()`` (the ERP's answer → dict with
at least ``id`` and ``external_reference``) and ``find_params()`` (lookup query).
Point ``settings["client_class"]`` of the connection at the subclass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin

from django.utils.module_loading import import_string

from integrations.connectors.erp.constants import CREDIT_MEMOS, JOURNAL_ENTRIES, TRIAL_BALANCE
from integrations.connectors.erp.mapping import (
    CreditMemo,
    ErpDocument,
    JournalEntry,
    check_balanced,
    credit_memo_to_wire,
    document_from_wire,
    journal_entry_to_wire,
)
from integrations.kernel import exceptions as exc
from integrations.kernel.http import http_request
from integrations.kernel.throttle import throttle

if TYPE_CHECKING:
    from integrations.kernel.types import Connection


def auth_headers(connection: Connection) -> dict[str, str]:
    """Bearer token, or HTTP Basic from username/password."""
    import base64

    if token := connection.credential("token"):
        return {"Authorization": f"Bearer {token}"}
    user, password = connection.credential("username"), connection.credential("password")
    if user and password:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }
    raise exc.ConnectorConfigurationError(
        f"connection {connection.name} needs credentials token, or username and password"
    )


LIST_PAGE_SIZE = 500
"""Documents asked for per page of a list (the sandbox ERP's maximum)."""


class ErpClient:
    paths: ClassVar[dict[str, str]] = {
        JOURNAL_ENTRIES: "/api/journal-entries",
        CREDIT_MEMOS: "/api/credit-memos",
        TRIAL_BALANCE: "/api/trial-balance",
    }

    def __init__(self, connection: Connection) -> None:
        if not connection.base_url:
            raise exc.ConnectorConfigurationError(f"connection {connection.name} has no base URL")
        self.connection = connection
        self.base = connection.base_url.rstrip("/")

    # --- extension points ------------------------------------------------------------
    def encode_journal_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        return entry

    def encode_credit_memo(self, memo: dict[str, Any]) -> dict[str, Any]:
        return memo

    def decode_document(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def find_params(self, external_reference: str) -> dict[str, str]:
        return {"external_reference": external_reference}

    # --- plumbing ------------------------------------------------------------------------
    def _request(self, method: str, kind: str, *, operation: str, **kwargs: Any):
        return self._request_url(
            method, self.base + self.paths[kind], operation=operation, **kwargs
        )

    def _request_url(self, method: str, url: str, *, operation: str, **kwargs: Any):
        throttle(self.connection)
        return http_request(
            self.connection,
            method,
            url,
            operation=operation,
            headers={**auth_headers(self.connection), "Accept": "application/json"},
            **kwargs,
        )

    def _pages(self, kind: str, params: dict[str, Any], *, operation: str) -> Iterator[dict]:
        """Every result of a list, page after page: each answer's ``next`` (an absolute
        or a relative URL, null on the last page) is followed, one page in memory at a
        time. An ERP that does not page answers everything at once, without ``next``."""
        url = self.base + self.paths[kind]
        seen: set[str] = set()
        query: dict[str, Any] | None = params
        while url:
            seen.add(url)
            body = self._request_url("GET", url, operation=operation, params=query).json()
            yield from body.get("results") or []
            following = body.get("next")
            url = urljoin(url, following) if following else ""
            query = None  # the next page's URL carries the query
            if url in seen:
                raise exc.DataError(f"{operation}: the ERP's next page {url} was read already")

    def _post(self, kind: str, body: dict[str, Any], *, operation: str) -> dict[str, Any]:
        reference = body.get("external_reference")
        if not reference:
            raise exc.DataError(f"{operation}: external_reference is required")
        try:
            response = self._request(
                "POST", kind, operation=operation, json=body, idempotency_key=str(reference)
            )
        except exc.BadRequest as error:
            if error.http_status == 422:
                raise exc.BusinessRuleError(
                    f"{operation}: the ERP already holds {reference} with different content"
                ) from error
            raise
        return self.decode_document(response.json())

    def _find(self, kind: str, external_reference: str, *, operation: str) -> dict | None:
        response = self._request(
            "GET", kind, operation=operation, params=self.find_params(external_reference)
        )
        results = response.json().get("results") or []
        return self.decode_document(results[0]) if results else None

    # --- operations ------------------------------------------------------------------------
    def journal_entry_post(self, *, entry: JournalEntry | dict[str, Any]) -> dict[str, Any]:
        """Post a balanced journal entry; safe to repeat with the same reference."""
        if isinstance(entry, JournalEntry):
            entry = journal_entry_to_wire(entry)
        check_balanced(entry.get("lines") or [])
        return self._post(
            JOURNAL_ENTRIES, self.encode_journal_entry(entry), operation="erp.journal_entry.post"
        )

    def journal_entry_find(self, external_reference: str) -> dict | None:
        return self._find(JOURNAL_ENTRIES, external_reference, operation="erp.journal_entry.find")

    def journal_entries_since(self, day: date) -> Iterator[ErpDocument]:
        """The journal entries dated ``day`` or later (``date_from``; an ERP that ignores
        it answers more, filtered here by the documents' own dates), streamed page
        after page."""
        params = {"date_from": day.isoformat(), "page_size": LIST_PAGE_SIZE}
        for raw in self._pages(JOURNAL_ENTRIES, params, operation="erp.journal_entry.list"):
            document = document_from_wire(self.decode_document(raw))
            if not document.date or document.date >= day.isoformat():
                yield document

    def credit_memo_post(self, *, memo: CreditMemo | dict[str, Any]) -> dict[str, Any]:
        if isinstance(memo, CreditMemo):
            memo = credit_memo_to_wire(memo)
        if memo.get("lines"):
            check_balanced(memo["lines"])
        return self._post(
            CREDIT_MEMOS, self.encode_credit_memo(memo), operation="erp.credit_memo.post"
        )

    def credit_memo_find(self, external_reference: str) -> dict | None:
        return self._find(CREDIT_MEMOS, external_reference, operation="erp.credit_memo.find")

    def health(self, path: str = "/") -> int:
        """One authenticated GET of ``path`` (test connection): the HTTP status."""
        throttle(self.connection)
        response = http_request(
            self.connection,
            "GET",
            self.base + path,
            operation="test",
            headers=auth_headers(self.connection),
        )
        return response.status_code

    def trial_balance(self) -> dict[str, Any]:
        return self._request("GET", TRIAL_BALANCE, operation="erp.trial_balance").json()


def erp_client(connection: Connection) -> ErpClient:
    path = connection.settings.get("client_class")
    cls = import_string(path) if path else ErpClient
    if not issubclass(cls, ErpClient):
        raise exc.ConnectorConfigurationError(f"{path} is not an ErpClient subclass")
    return cls(connection)
