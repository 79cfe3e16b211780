"""InfluxDB as a metric source: Flux (as Flagger) or InfluxQL, told apart by the query itself.

Which language: a query whose first word is SELECT or SHOW (InfluxQL's read statements; Flux has
neither keyword) is InfluxQL, sent to `GET <address>/query` (InfluxDB 1.x, and 2.x's 1.x
compatibility API) and answered in JSON; anything else is Flux, sent to
`POST <address>/api/v2/query?org=<org>` and answered in annotated CSV
(https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/), as Flagger's influxdb
provider does (pkg/metrics/providers/influxdb.go).

Credentials, from the Secret: `token` is sent as `Authorization: Token <token>` (InfluxDB 2.x; on
1.8 the token is `username:password`); `org` is Flux's organisation (Flagger's keys); without a
token, `username` and `password` are sent as basic auth (InfluxDB 1.x). The provider's own field
`database` is InfluxQL's `db` parameter (it can also be named in the query: `FROM "db"."rp"."m"`).

The value: Flux, as Flagger, the first record's `_value` (end the query with an aggregate such as
`|> sum()` or `|> last()`); InfluxQL, the last non-null row of the first value column. No series (or
no table) is no data; a null or NaN value is NaN; several series or tables are ambiguous. At a past
instant Flux gets the query API's `now`, and InfluxQL's `now()` is replaced by that instant, so that
relative windows (`range(start: -1m)`, `time > now() - 1m`) end there; a range is the query at every
step (see `analysis.providers.instants`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from analysis.providers.base import (
    BadQueryError,
    ProviderConfig,
    Series,
    TimeLike,
    UnreachableError,
    as_datetime,
)
from analysis.providers.http import HttpApi
from analysis.providers.instants import range_of_instants
from analysis.providers.values import first_point, last_point, series_of, value_of

_INFLUXQL = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(select|show)\b", re.IGNORECASE)
_NOW = re.compile(r"\bnow\(\s*\)", re.IGNORECASE)
# Columns of a Flux table that are not labels of its series.
_FLUX_META = frozenset({"", "result", "table", "_start", "_stop", "_time", "_value"})


def is_influxql(query: str) -> bool:
    """True for an InfluxQL query (first word SELECT or SHOW), False for Flux."""
    return bool(_INFLUXQL.match(query))


class InfluxDBProvider:
    """Flux and InfluxQL queries against one InfluxDB."""

    def __init__(self, address: str, *, token: str | None = None, org: str | None = None,
                 username: str | None = None, password: str | None = None, database: str | None = None,
                 insecure_skip_verify: bool = False, timeout: float = 10.0, retries: int = 2,
                 api: HttpApi | None = None) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password) if not token and username and password else None
        self.api = api or HttpApi("InfluxDB", address, headers=headers, auth=auth,
                                  insecure_skip_verify=insecure_skip_verify, timeout=timeout, retries=retries)
        self.address = self.api.address
        self.where = f"InfluxDB at {self.address}"
        self.org = org or ""
        self.database = database

    def close(self) -> None:
        self.api.close()

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Every series (InfluxQL) or table (Flux); for an instant, each one's value as one point."""
        if is_influxql(query):
            return [last_point(s) for s in self.influxql(query, at)]
        return [first_point(s) for s in self.flux(query, at)]

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        return value_of(self.where, self.query(query, at), query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        return range_of_instants(lambda t: self.query(query, t), start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return series_of(self.where, self.query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """True when InfluxDB answers its ping endpoint (1.x and 2.x)."""
        try:
            self.api.request("GET", "ping")
        except Exception:
            return False
        return True

    # ------------------------------------------------------------------------------------ InfluxQL

    def influxql(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Every series of every statement's result, with all its rows (null as NaN)."""
        sent = query if at is None else _NOW.sub(f"'{_rfc3339(at)}'", query)
        params = {"q": sent, "epoch": "ms", **({"db": self.database} if self.database else {})}
        body = self.api.json("GET", "query", params=params, query=query)
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise UnreachableError(f"{self.where} answered {str(body)[:200]!r}, not InfluxQL results", query)
        found: list[Series] = []
        for result in results:
            if isinstance(result, Mapping) and result.get("error"):
                detail = str(result["error"])
                raise BadQueryError(f"InfluxDB rejected the query: {detail}", query, 200, "", detail)
            for item in (result.get("series") or []) if isinstance(result, Mapping) else []:
                found.append(_influxql_series(item))
        return found

    # ---------------------------------------------------------------------------------------- Flux

    def flux(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Every table of the annotated CSV answer, with all its records (null as NaN)."""
        body: dict[str, Any] = {"query": query, "type": "flux",
                                "dialect": {"header": True, "annotations": ["datatype", "group", "default"]}}
        if at is not None:
            body["now"] = _rfc3339(at)
        response = self.api.request("POST", "api/v2/query", params={"org": self.org}, json_body=body,
                                    headers={"Accept": "application/csv"}, query=query)
        return parse_annotated_csv(response.text, query, self.where)


def parse_annotated_csv(text: str, query: str, where: str = "InfluxDB") -> list[Series]:
    """The tables of an annotated CSV answer as series: the group-key columns (but _start and _stop)
    are the labels, `_time` (else `_stop`) the timestamps, `_value` the values.

    An `error` table (an error met while streaming the answer) is a BadQueryError.
    """
    tables: dict[tuple[str, str], tuple[dict[str, str], list[float], list[float]]] = {}
    header: list[str] | None = None
    group: list[str] = []
    defaults: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        if not row or all(not cell for cell in row):
            header, group, defaults = None, [], []  # a blank line ends a block: annotations and a header follow
            continue
        if row[0].startswith("#"):
            if row[0] == "#group":
                group = row
            elif row[0] == "#default":
                defaults = row
            header = None
            continue
        if header is None:
            header = row
            continue
        # An empty cell takes its column's #default (e.g. the result's name).
        cells = [cell or (defaults[i] if i < len(defaults) else "") for i, cell in enumerate(row)]
        record = dict(zip(header, cells, strict=False))
        if "error" in record and "_value" not in record:
            detail = record["error"]
            raise BadQueryError(f"InfluxDB rejected the query: {detail}", query, 200, "", detail)
        if "_value" not in record:
            raise UnreachableError(f"{where} answered a table without a _value column: {header}", query)
        grouped = {name for name, flag in zip(header, group, strict=False) if flag == "true"}
        labels = {k: v for k, v in record.items() if k in grouped and k not in _FLUX_META}
        key = (record.get("result", ""), record.get("table", ""))
        _, stamps, values = tables.setdefault(key, (labels, [], []))
        stamp = record.get("_time") or record.get("_stop") or ""
        stamps.append(_unix(stamp) if stamp else np.nan)
        values.append(_float(record["_value"]))
    return [Series(labels, np.array(ts, dtype=np.float64), np.array(vs, dtype=np.float64))
            for labels, ts, vs in tables.values()]


def _influxql_series(item: Mapping[str, Any]) -> Series:
    columns: Sequence[str] = item.get("columns") or []
    rows: Sequence[Sequence[Any]] = item.get("values") or []
    labels = {"name": str(item.get("name", "")), **{str(k): str(v) for k, v in (item.get("tags") or {}).items()}}
    value_at = next((i for i, c in enumerate(columns) if c != "time"), None)
    time_at = columns.index("time") if "time" in columns else None
    stamps = [float(r[time_at]) / 1000 if time_at is not None and r[time_at] is not None else np.nan for r in rows]
    values = [_float(r[value_at]) if value_at is not None else np.nan for r in rows]
    return Series(labels, np.array(stamps, dtype=np.float64), np.array(values, dtype=np.float64))


def _float(value: Any) -> float:
    if value is None or value == "":
        return np.nan
    try:
        return float(value)  # also "NaN", "+Inf"
    except (TypeError, ValueError):
        return np.nan  # a string or boolean field is not a number


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _rfc3339(at: TimeLike) -> str:
    return as_datetime(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build(config: ProviderConfig) -> InfluxDBProvider:
    """The provider for a MetricTemplate of type influxdb."""
    if not config.address:
        raise ValueError("an influxdb provider needs provider.address, e.g. http://influxdb.monitoring:8086")
    database = config.options.get("database")
    return InfluxDBProvider(config.address, token=config.secret.get("token"), org=config.secret.get("org"),
                            username=config.secret.get("username"), password=config.secret.get("password"),
                            database=str(database) if database else None,
                            insecure_skip_verify=config.insecure_skip_verify, timeout=config.timeout,
                            retries=config.retries)
