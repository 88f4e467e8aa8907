"""One search interface over both databases (API.md 7, 9).

Lexical: PostgreSQL full-text search (stored tsvector, GIN, websearch_to_tsquery, ts_rank_cd)
or SQLite FTS5 (bm25). Optional semantic: pgvector's HNSW index where PostgreSQL has the
`vector` extension, else exact cosine over the chunks' embeddings in NumPy; fused with the
lexical ranking by reciprocal rank fusion. The tenant filter is part of every query:
another organization's private chunks are never candidates, whatever the limit.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import connection

from core import prepared
from knowledge import embeddings, text, vectors
from knowledge.models import Chunk, Document

SCOPES = ("all", "public", "private")
_PARTS = {"all": ("public", "private"), "public": ("public",), "private": ("private",)}
RRF_K = 60
CANDIDATES = 50  # per ranking, before fusion
# Matching rows ranked per full-text statement on PostgreSQL, at most (docs/benchmarks.md,
# "Retrieval at 500,000 chunks").
RANKED_MATCHES = 250

STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in into is it its "
    "me my no not of on or our should so than that the their them then there these they "
    "this to us was we what when where which who why will with you your".split())


@dataclass(frozen=True)
class Passage:
    chunk: Chunk
    document: Document
    score: float  # 0..1, higher is better
    scope: str  # "public" | "private"
    context: str = ""  # the chunk widened to its section (widen()); the chunk alone if empty
    similarity: float | None = None  # cosine to the question, when embeddings are on
    # (heading inside `text`, cosine to the question) per widened section; "" is its own
    relevance: tuple[tuple[str, float], ...] = ()

    @property
    def text(self) -> str:
        return self.context or self.chunk.text


def search(query: str, *, domain=None, category=None, organization=None, scope: str = "all",
           limit: int = 5, method: str | None = None) -> list[Passage]:
    """The best `limit` passages for `query` among the public library of `domain`/`category`
    and, per `scope`, the organization's own ready documents (those without a domain serve
    every domain). `method`: "lexical", "semantic", "hybrid", or None for
    embeddings.search_method() (lexical unless configured or a local/openai backend)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    method = method or embeddings.search_method()
    where, params = _filters(domain, category, organization, scope)
    if where is None:
        return []
    if method == "lexical":
        return _hydrate(_lexical(query, where, params, limit)[:limit], organization)
    if all(word in STOPWORDS for word in re.findall(r"\w+", query.lower())):
        return []  # nothing to look for: an empty question, or only words like "the and of"
    depth = max(limit, CANDIDATES)
    # The parts of the scope (the library, the organization's documents) are searched apart
    # without pgvector, so the library's vectors are kept once for every organization.
    parts = [_filters(domain, category, organization, part) for part in _PARTS[scope]]
    parts = [(w, p) for w, p in parts if w is not None]
    if method == "semantic":
        ranked = _semantic(query, where, params, depth, parts)
    elif method == "hybrid":
        ranked = _fuse(_lexical(query, where, params, depth),
                       _semantic(query, where, params, depth, parts))
    else:
        raise ValueError(f"unknown retrieval method {method!r}")
    return _hydrate(ranked[:limit], organization)


def _filters(domain, category, organization, scope: str) -> tuple[str | None, list]:
    clauses: list[str] = []
    params: list = []
    if scope in ("all", "public") and domain is not None:
        public = "(c.organization_id IS NULL AND c.domain_id = %s"
        params.append(domain.pk)
        if category is not None:
            public += " AND c.category_id = %s"
            params.append(category.pk)
        clauses.append(public + ")")
    if scope in ("all", "private") and organization is not None:
        private = "(c.organization_id = %s"
        params.append(_db_value(organization.pk))
        if domain is not None:
            private += " AND (c.domain_id IS NULL OR c.domain_id = %s)"
            params.append(domain.pk)
        if category is not None:
            private += " AND (c.category_id IS NULL OR c.category_id = %s)"
            params.append(category.pk)
        clauses.append(private + ")")
    if not clauses:
        return None, []
    return "(" + " OR ".join(clauses) + ")", params


def _db_value(organization_pk):
    field = Chunk._meta.get_field("organization").target_field
    return field.get_db_prep_value(organization_pk, connection)


def terms_of(query: str) -> list[str]:
    words = re.findall(r"[\w][\w'-]*", query.lower())
    seen: dict[str, None] = {}
    for word in words:
        word = word.strip("'-")
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def _lexical(query: str, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    if connection.vendor == "postgresql":
        return _postgres(query, where, params, limit)
    return _sqlite(query, where, params, limit)


def _postgres(query: str, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    # websearch_to_tsquery parses what people type (quotes, -, or). Passages holding every
    # term come first; when they are fewer than `limit` the query is relaxed step by step:
    # passages holding at least two of the terms, then any term (OR). The rank has to be
    # computed for every match, and OR matches a large share of a big corpus while "two of the
    # terms" matches far fewer, so each step is only taken when the one before came up short
    # (docs/benchmarks.md). Each step ranks by RANK_NORMALIZATION.
    ranked: list[tuple[int, float]] = []
    stages = ("all", "pairs", "any") if _plain(query) else ("all", "any")
    terms = None
    for stage in stages:
        if stage != "all" and terms is None:
            terms = _terms(query)
        seen = {pk for pk, _ in ranked}
        found = _postgres_ranked(query, where, params, limit, stage=stage, terms=terms)
        ranked += [(pk, rank) for pk, rank in found if pk not in seen][:limit - len(ranked)]
        if len(ranked) >= limit:
            break
    return ranked


# ts_rank / ts_rank_cd normalisation: 1 divides the rank by 1 + the logarithm of the chunk's
# length, so a chunk does not rank higher for holding more words (a long section mentioning
# the question's words in passing against the short one about them, as FTS5's bm25 does on
# SQLite); 32 then maps it into 0..1 (rank / (rank + 1)). 32 alone ranked PostgreSQL's
# answers' context below SQLite's (docs/benchmarks.md, "PostgreSQL ranks by length too").
RANK_NORMALIZATION = 1 | 32


def _plain(query: str) -> bool:
    """No quotes, exclusions or "or": the terms can be recombined freely."""
    return not re.search(r'["]|(^|\s)-\w|\bor\b', query, flags=re.IGNORECASE)


# Each stage: the tsquery rows must match, the tsquery and function they are ranked by (from
# (config, query) parameters). "Two of the terms" can match thousands of rows; it ranks them
# by the OR of the terms with ts_rank. ts_rank_cd over the OR of every pair looked for covers
# of each pair and cost several times as much per row, and ranked the evaluation set worse
# (PostgreSQL MRR@10 0.955 against 0.971 now; docs/benchmarks.md).
_ALL = ("websearch_to_tsquery(%s::regconfig, %s)", 2)
# "Any term": the websearch query with its ANDs made ORs, cast back to a tsquery as it is. Not
# parsed again by to_tsquery, which would stem each lexeme a second time ('exercis' becomes
# 'exerci', 'respons' 'respon', 'employe' 'employ') and so never match the passages' own
# lexemes: 106 of the 267 evaluation questions lost a term that way.
_ANY = ("replace(websearch_to_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')::tsquery", 2)
_PAIRS = ("(SELECT coalesce(string_agg(quote_literal(a.l) || ' & ' || quote_literal(b.l), "
          "' | '), '')::tsquery FROM (SELECT DISTINCT unnest(tsvector_to_array("
          "to_tsvector(%s::regconfig, %s))) AS l) a JOIN (SELECT DISTINCT unnest("
          "tsvector_to_array(to_tsvector(%s::regconfig, %s))) AS l) b ON a.l < b.l)", 4)
_STAGES = {"all": (_ALL, _ALL, "ts_rank_cd"), "pairs": (_PAIRS, _ANY, "ts_rank"),
           "any": (_ANY, _ANY, "ts_rank_cd")}


def _tsquery_params(arity: int, config: str, query: str) -> list:
    return {2: [config, query], 4: [config, query, config, query]}[arity]


def _postgres_ranked(query: str, where: str, params: list, limit: int, *, stage: str,
                     terms: Terms | None = None) -> list[tuple[int, float]]:
    if terms is not None and stage in _STEPPED:
        steps = _steps(stage, terms)
        if steps is not None:
            return _postgres_stepped(query, where, params, limit, stage=stage, steps=steps)
    (match, match_arity), (rank, rank_arity), function = _STAGES[stage]
    config = settings.EGRET_SEARCH_CONFIG
    columns, stage_params = f"{match} AS query", _tsquery_params(match_arity, config, query)
    ranked_by = "q.query"  # the matching tsquery, parsed once, unless the stage ranks by another
    if rank != match:
        columns += f", {rank} AS rank"
        stage_params += _tsquery_params(rank_arity, config, query)
        ranked_by = "q.rank"
    # At most RANKED_MATCHES matching rows are ranked (the LIMIT inside `hit` keeps the
    # planner from flattening it): the cost of a statement is bounded whatever the size of
    # the library, instead of growing with the number of rows a frequent term matches.
    sql = (
        f"WITH q AS (SELECT {columns}), "
        "hit AS (SELECT c.id, c.search_vector FROM knowledge_chunk c, q "
        f"WHERE q.query::text <> '' AND c.search_vector @@ q.query AND {where} LIMIT %s) "
        f"SELECT hit.id, {function}('{{0.1, 0.2, 0.4, 1.0}}', hit.search_vector, "
        f"{ranked_by}, {RANK_NORMALIZATION}) AS rank FROM hit, q "
        "ORDER BY rank DESC, hit.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*stage_params, *params, RANKED_MATCHES, limit])
        return [(pk, float(rank)) for pk, rank in cursor.fetchall()]


# --- Relaxed steps on a large library: the rarest terms first --------------------------------
# A GIN bitmap scan reads the whole posting list of every term it has to look at before the
# first row comes back, so "two of the terms" and "any term" cost time in proportion to how
# common the query's terms are, even though only RANKED_MATCHES rows are ranked. Those two
# steps are therefore split into disjoint parts, one per term, the rarest term first: part k
# holds the rows whose rarest query term is term k (and, for "two of the terms", another term
# after it). Together the parts match exactly the rows the single statement matches, so when
# fewer than RANKED_MATCHES rows match, the same rows are ranked the same way. When more
# match, the statement stops once it has RANKED_MATCHES rows: those that hold the rarest terms
# come first (and GIN only has to walk the rare term's posting list for them), instead of the
# first rows met in the table's physical order.
STATISTICS_TTL = 300.0  # seconds a process keeps the table's term frequencies


@dataclass(frozen=True)
class Terms:
    """The lexemes each relaxed step is made of, rarest first. "Two of the terms" pairs the
    query's lexemes (to_tsvector); "any term" matches the operands of its own tsquery (the
    websearch query with its ANDs made ORs), or is None when that tsquery holds more than
    lexemes (phrases, prefixes, weights, negations) and is not split."""
    lexemes: tuple[str, ...]
    alternatives: tuple[str, ...] | None


_STEPPED = {"pairs": (_ANY, "ts_rank"), "any": (_ANY, "ts_rank_cd")}  # rank tsquery, function
_OPERAND = re.compile(r"'((?:[^'\\]|''|\\.)*)'")
_FREQUENCIES: dict = {}  # database name: (monotonic time read, {lexeme: share of chunks})


def _terms(query: str) -> Terms:
    config = settings.EGRET_SEARCH_CONFIG
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s)), "
                       f"{_ANY[0]}::text",
                       [config, query, *_tsquery_params(_ANY[1], config, query)])
        lexemes, alternatives = cursor.fetchone()
    operands: set[str] | None = set()
    for operand in alternatives.split(" | ") if alternatives else ():
        found = _OPERAND.fullmatch(operand)
        if found is None:
            operands = None
            break
        operands.add(re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", found.group(1)))
    return Terms(_rarest_first(lexemes),
                 None if operands is None else _rarest_first(operands))


def _rarest_first(lexemes) -> tuple[str, ...]:
    share = _frequencies()
    return tuple(sorted(lexemes, key=lambda lexeme: (share.get(lexeme, 0.0), lexeme)))


def _frequencies() -> dict[str, float]:
    """Share of the chunks holding each of the most common lexemes, from the statistics
    ANALYZE keeps for the tsvector column (lexemes not listed are rarer than all of these);
    read again after STATISTICS_TTL. Empty before the first ANALYZE."""
    key = connection.settings_dict["NAME"]
    read_at, share = _FREQUENCIES.get(key, (None, {}))
    if read_at is not None and time.monotonic() - read_at < STATISTICS_TTL:
        return share
    with connection.cursor() as cursor:
        cursor.execute("SELECT most_common_elems::text::text[], most_common_elem_freqs "
                       "FROM pg_stats WHERE schemaname = current_schema() "
                       "AND tablename = 'knowledge_chunk' AND attname = 'search_vector' "
                       "LIMIT 1")
        row = cursor.fetchone()
    share = dict(zip(row[0], row[1])) if row and row[0] and row[1] else {}
    _FREQUENCIES[key] = (time.monotonic(), share)
    return share


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _steps(stage: str, terms: Terms) -> list[str] | None:
    """The stage's tsquery split into disjoint parts, rarest term first; None when the
    stage cannot be split (an "any" step over phrases or prefixes keeps its one query)."""
    if stage == "any":
        if terms.alternatives is None:
            return None
        quoted = [_quoted(lexeme) for lexeme in terms.alternatives]
        heads = [(k, quoted[k]) for k in range(len(quoted))]
    else:  # pairs: term k and any term after it
        quoted = [_quoted(lexeme) for lexeme in terms.lexemes]
        heads = [(k, f"{quoted[k]} & ({' | '.join(quoted[k + 1:])})")
                 for k in range(len(quoted) - 1)]
    return [head + "".join(f" & !{rarer}" for rarer in quoted[:k]) for k, head in heads]


def _postgres_stepped(query: str, where: str, params: list, limit: int, *, stage: str,
                      steps: list[str]) -> list[tuple[int, float]]:
    if not steps:
        return []
    (rank, rank_arity), function = _STEPPED[stage]
    config = settings.EGRET_SEARCH_CONFIG
    columns = ", ".join(f"%s::tsquery AS s{k}" for k in range(len(steps)))
    # One branch per part; the Append under the LIMIT runs a part only when the parts before
    # it returned fewer than RANKED_MATCHES rows (a bitmap scan starts on its first row).
    parts = " UNION ALL ".join(
        f"(SELECT c.id, c.search_vector FROM knowledge_chunk c, q "
        f"WHERE c.search_vector @@ q.s{k} AND {where})" for k in range(len(steps)))
    sql = (
        f"WITH q AS (SELECT {columns}, {rank} AS rank), "
        f"hit AS (SELECT * FROM ({parts}) parts LIMIT %s) "
        f"SELECT hit.id, {function}('{{0.1, 0.2, 0.4, 1.0}}', hit.search_vector, q.rank, "
        f"{RANK_NORMALIZATION}) AS rank FROM hit, q ORDER BY rank DESC, hit.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*steps, *_tsquery_params(rank_arity, config, query),
                             *(params * len(steps)), RANKED_MATCHES, limit])
        return [(pk, float(rank)) for pk, rank in cursor.fetchall()]


def _sqlite(query: str, where: str, params: list, limit: int) -> list[tuple[int, float]]:
    terms = terms_of(query)
    if not terms:
        return []
    match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    sql = (
        "SELECT c.id, bm25(knowledge_chunk_fts, 2.0, 1.0) AS rank FROM knowledge_chunk_fts "
        "JOIN knowledge_chunk c ON c.id = knowledge_chunk_fts.rowid "
        f"WHERE knowledge_chunk_fts MATCH %s AND {where} ORDER BY rank, c.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, *params, limit])
        rows = cursor.fetchall()
    # bm25 is negative, lower is better; map it into 0..1 the same way as PostgreSQL.
    return [(pk, -rank / (1.0 - rank)) for pk, rank in rows]


def _semantic(query: str, where: str, params: list, limit: int,
              parts: list | None = None) -> list[tuple[int, float]]:
    # pgvector's HNSW index where the column exists (knowledge/vectors.py), the tenant filter
    # inside the same query; otherwise an exact cosine in NumPy over the vectors of each part
    # of the scope (`parts`: the public library, the organization's own documents).
    if vectors.column() is not None:
        ranked = vectors.search(embeddings.embed_query(query), where, params, limit)
        if ranked is not None:
            return [(pk, max(0.0, score)) for pk, score in ranked]
    return _semantic_exact(query, where, params, limit, parts)


def _semantic_exact(query: str, where: str, params: list, limit: int,
                    parts: list | None = None) -> list[tuple[int, float]]:
    """The `limit` chunks nearest the question among those `where` selects, or, given
    `parts` (filters that together select the same chunks), among each part's, merged: the
    public library's vectors are then kept once for every organization that asks."""
    import numpy as np

    question = np.asarray(embeddings.embed_query(query), dtype=np.float32)
    parts = parts or [(where, params)]
    found: list[tuple[int, float]] = []
    for (part_where, part_params), stamp in zip(parts, _stamps(parts)):
        scope = _scope_vectors(part_where, part_params, stamp, question.shape[0])
        if scope is None:
            continue  # nothing embedded, or vectors of another width: `reindex` has not run
        best = embeddings.top_k(question, scope.matrix, limit, unit_rows=True)
        found.extend((scope.ids[i], max(0.0, float(score))) for i, score in best)
    return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:limit]


# --- The scope's vectors, kept per process (exact search without pgvector) -----------------
SCOPE_VECTORS_KEPT = 32  # scopes: a library category, an organization's documents
SCOPE_VECTORS_BYTES = 256 * 1024 * 1024  # at most, kept per process (the least recent go)
SCOPE_VECTORS_TTL = 300.0  # seconds before the vectors are read again whatever the stamp says


@dataclass(frozen=True)
class _ScopeVectors:
    stamp: tuple  # (documents, latest change of one) when read
    read_at: float
    ids: list
    matrix: object  # float32 array, one unit-length row per chunk of `ids`


_SCOPES: OrderedDict = OrderedDict()
_SCOPES_LOCK = threading.Lock()


def _stamps(parts: list) -> list[tuple]:
    """Each part's stamp (how many documents, the latest `updated_at` of one), read from the
    documents table with the chunks' own filter (a document and its chunks carry the same
    organization, domain and category): one statement for all parts, whatever their size."""
    sql = " UNION ALL ".join(
        f"SELECT {index}, count(*), max(c.updated_at) FROM knowledge_document c WHERE {where}"
        for index, (where, _) in enumerate(parts))
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _, params in parts for param in params])
        rows = {index: (str(count), str(latest)) for index, count, latest in cursor.fetchall()}
    return [rows[index] for index in range(len(parts))]


def _scope_vectors(where: str, params: list, stamp: tuple,
                   width: int) -> _ScopeVectors | None:
    """Every embedded chunk of the scope and its vector (scaled to unit length), read once and
    kept while the scope's documents are unchanged (`stamp`, _stamps(): checking it costs the
    same on ten chunks or a million). Ingestion, failure and re-ingestion move `updated_at`;
    an upload or a deletion moves the count; `reindex` touches every document. Vectors are
    also read again after SCOPE_VECTORS_TTL, or at once when their width is not the
    question's (`width`). None when the scope has no vector of that width."""
    import numpy as np

    key = (connection.alias, connection.settings_dict["NAME"], where, tuple(map(str, params)))
    with _SCOPES_LOCK:
        kept = _SCOPES.get(key)
        if kept is not None and kept.stamp == stamp and _width(kept) in (0, width) and (
                time.monotonic() - kept.read_at < SCOPE_VECTORS_TTL):
            _SCOPES.move_to_end(key)
            return kept if kept.ids else None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id, c.embedding FROM knowledge_chunk c WHERE {where} "
                       "AND c.embedding IS NOT NULL ORDER BY c.id", params)
        rows = cursor.fetchall()
    vectors = [embeddings.from_bytes(blob) for _, blob in rows]
    widest = max((v.shape[0] for v in vectors), default=0)  # a reindex half done: one width
    rows = [(pk, v) for (pk, _), v in zip(rows, vectors) if v.shape[0] == widest]
    matrix = None
    if rows:
        matrix = np.vstack([v for _, v in rows]).astype(np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[~(norms > 0)] = np.inf  # zero or corrupt rows score 0
        matrix /= norms
    scope = _ScopeVectors(stamp=stamp, read_at=time.monotonic(), ids=[pk for pk, _ in rows],
                          matrix=matrix)
    with _SCOPES_LOCK:
        _SCOPES[key] = scope
        _SCOPES.move_to_end(key)
        while len(_SCOPES) > 1 and (len(_SCOPES) > SCOPE_VECTORS_KEPT or sum(
                kept.matrix.nbytes for kept in _SCOPES.values() if kept.matrix is not None)
                > SCOPE_VECTORS_BYTES):
            _SCOPES.popitem(last=False)
    return scope if scope.ids and _width(scope) == width else None


def _width(scope: _ScopeVectors) -> int:
    return 0 if scope.matrix is None else scope.matrix.shape[1]


def _rrf(rankings) -> dict[int, float]:
    """Reciprocal rank fusion scores (k = RRF_K) of the ids of `rankings` (lists of ids, best
    first), in the order the ids are first seen."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, pk in enumerate(ranking):
            fused[pk] = fused.get(pk, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def _fuse(*rankings: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (k=60); the score is rescaled so the best possible is 1."""
    fused = _rrf([pk for pk, _ in ranking] for ranking in rankings)
    best = len(rankings) / (RRF_K + 1)
    return sorted(((pk, s / best) for pk, s in fused.items()), key=lambda x: (-x[1], x[0]))


def _hydrate(ranked: list[tuple[int, float]], organization) -> list[Passage]:
    if not ranked:
        return []
    chunks = _chunks_with_documents([pk for pk, _ in ranked])
    passages = []
    for pk, score in ranked:
        chunk = chunks.get(pk)
        if chunk is None:  # deleted between the search and now
            continue
        private = chunk.organization_id is not None
        passages.append(Passage(chunk=chunk, document=chunk.document,
                                score=round(min(1.0, max(0.0, score)), 4),
                                scope="private" if private else "public"))
    return passages


def _fields(model, leave_out: tuple[str, ...] = ()) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in leave_out]


_CHUNK_FIELDS = _fields(Chunk, ("search_vector",))  # nothing after the search reads it
_DOCUMENT_FIELDS = _fields(Document)


_CONVERTERS: dict = {}


def _converted(model, fields: list, values) -> list:
    """Raw column values with the ORM's value converters applied (UUIDs kept as text by
    SQLite become UUIDs, and so on), as the ORM would read them."""
    key = (model, tuple(f.attname for f in fields), connection.vendor)
    converters = _CONVERTERS.get(key)
    if converters is None:
        converters = []
        for position, field in enumerate(fields):
            expression = field.get_col(model._meta.db_table)
            found = (connection.ops.get_db_converters(expression)
                     + expression.get_db_converters(connection))
            if found:
                converters.append((position, (found, expression)))
        _CONVERTERS[key] = converters
    return prepared.converted(values, converters, connection)


def _instances(model, fields: list, values) -> object:
    """A model instance from raw column values, as the ORM would build it."""
    return model.from_db(connection.alias, [f.attname for f in fields],
                         _converted(model, fields, values))


def _chunks_with_documents(pks: list) -> dict:
    """{pk: chunk} with each chunk's document attached: one hand-written statement (the
    ORM's select_related in_bulk cost more CPU to compile than the database spent on it)."""
    quote = connection.ops.quote_name
    chunk_table, document_table = quote(Chunk._meta.db_table), quote(Document._meta.db_table)
    columns = ([f"{chunk_table}.{quote(f.column)}" for f in _CHUNK_FIELDS]
               + [f"{document_table}.{quote(f.column)}" for f in _DOCUMENT_FIELDS])
    prepare = Chunk._meta.pk.get_db_prep_value
    sql = (f"SELECT {', '.join(columns)} FROM {chunk_table} JOIN {document_table} "
           f"ON {document_table}.{quote(Document._meta.pk.column)} = "
           f"{chunk_table}.{quote(Chunk._meta.get_field('document').column)} "
           f"WHERE {chunk_table}.{quote(Chunk._meta.pk.column)} "
           f"IN ({', '.join(['%s'] * len(pks))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [prepare(pk, connection) for pk in pks])
        rows = cursor.fetchall()
    found, documents, split = {}, {}, len(_CHUNK_FIELDS)
    for values in rows:
        chunk = _instances(Chunk, _CHUNK_FIELDS, values[:split])
        document = documents.get(chunk.document_id)
        if document is None:
            document = documents[chunk.document_id] = _instances(
                Document, _DOCUMENT_FIELDS, values[split:])
        chunk.document = document
        found[chunk.pk] = chunk
    return found


# --- Passages for an answer -----------------------------------------------------------------
DOCUMENT_POOL = 4  # candidates looked at per passage returned
DOCUMENT_RRF_K = 5


def passages_for(query: str, *, limit: int, **scope) -> list[Passage]:
    """What an answer is built from: a wider pool of hits, regrouped so the documents most
    of the pool points to come first (a question in users' words matches a few words in
    each of several sections of the document that answers it, and one or two words of many
    others), then each widened to its section (widen()). The best hit of the pool, and its
    nearest in meaning, keep a place among the first `limit` whatever their documents'
    weight (_kept()). With lexical search and EGRET_FEEDBACK_TERMS set, the pool is searched
    once more with the words its best hits share (_feedback())."""
    depth = max(limit * DOCUMENT_POOL, 20)
    pool = search(query, limit=depth, **scope)
    by_words = pool[0].chunk.pk if pool else None
    question = _question_vector(query) if pool else None
    pool = _feedback(query, _by_meaning(question, pool), question, depth, scope)
    weight: dict = {}
    for rank, passage in enumerate(pool):
        key = passage.document.pk
        weight[key] = weight.get(key, 0.0) + 1.0 / (DOCUMENT_RRF_K + rank)
    order = {id(p): i for i, p in enumerate(pool)}
    grouped = sorted(pool, key=lambda p: (-weight[p.document.pk], order[id(p)]))
    return widen(_with_places(grouped, _kept(pool, by_words), limit), question=question,
                 limit=limit)


FEEDBACK_PASSAGES = 3  # the pool's best hits (words and meaning) whose words are looked at
FEEDBACK_MIN_HITS = 2  # a word must be in at least this many of them
FEEDBACK_MIN_LETTERS = 4


def _feedback(query: str, pool: list[Passage], question, depth: int, scope: dict
              ) -> list[Passage]:
    """Pseudo-relevance feedback: the question searched again with the content words that
    at least two of the pool's three best hits share and the question does not use (up to
    EGRET_FEEDBACK_TERMS, the most shared first), and the two pools fused by reciprocal rank.
    A question in users' words ("pinning down before the drill kicks off") reaches the
    document's own words ("objectives", "exercise") through the passages it did find.
    Lexical search only (semantic search has no vocabulary to bridge); costs one more
    search. Off by default: it brought more facts into the context on PostgreSQL and fewer
    into SQLite's answers (docs/benchmarks.md, "Pseudo-relevance feedback")."""
    count = settings.EGRET_FEEDBACK_TERMS
    if count <= 0 or not pool or embeddings.search_method() != "lexical":
        return pool
    asked = set(text.terms(query))
    shared: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for passage in pool[:FEEDBACK_PASSAGES]:
        own: set[str] = set()
        for word in text.words(f"{passage.chunk.heading_path} {passage.chunk.text}"):
            if len(word) < FEEDBACK_MIN_LETTERS or not word.isalpha() or not text.is_content(
                    word):
                continue
            key = text.stem(word)
            if key not in asked and key not in own:
                own.add(key)
                shared[key] += 1
                surface.setdefault(key, word)
    extra = [surface[key] for key, hits in shared.most_common() if hits >= FEEDBACK_MIN_HITS]
    if not extra:
        return pool
    more = _by_meaning(question, search(f"{query} {' '.join(extra[:count])}", limit=depth,
                                        **scope))
    fused = _rrf([p.chunk.pk for p in ranking] for ranking in (pool, more))
    first: dict[int, Passage] = {}
    for passage in (*pool, *more):
        first.setdefault(passage.chunk.pk, passage)
    return [first[pk] for pk in sorted(fused, key=lambda pk: -fused[pk])][:depth]


def _kept(pool: list[Passage], by_words: int | None = None) -> list[Passage]:
    """The candidates that keep a place among the passages whatever their document's weight:
    the best of all, by words and meaning together ("needed for the contract" as a ground for
    ad profiling sat first in a pool where data subject requests and processor contracts had
    four and six weaker hits each, and was left out of the answer), the nearest in meaning
    ("how quickly do my team need to get visit data into the sponsor's forms": the
    investigator's records section at 0.61 beside four hits on monitoring plans), and the best
    by words alone (the chunk `by_words`: "we just wrapped up a failover drill; when is the
    write-up due" found the exercise procedure first, far ahead of the rest, but the model
    does not link a drill to an exercise and five documents with more hits outvoted it)."""
    kept = pool[:1]
    near = [p for p in pool if p.similarity is not None]
    if near:
        nearest = max(near, key=lambda p: p.similarity)
        if nearest is not pool[0]:
            kept.append(nearest)
    for passage in pool:
        if passage.chunk.pk == by_words and not any(k is passage for k in kept):
            kept.append(passage)
            break
    return kept


def _with_places(grouped: list[Passage], kept: list[Passage], limit: int) -> list[Passage]:
    """`grouped` with each of `kept` among the first `limit`, in the last places not held by
    another of them; the passages they displace come next, in their order."""
    head = grouped[:limit]
    for passage in kept:
        if any(p is passage for p in head):
            continue
        for index in range(len(head) - 1, -1, -1):
            if not any(head[index] is k for k in kept):
                head[index] = passage
                break
    return head + [p for p in grouped if not any(p is h for h in head)]


def _question_vector(query: str):
    if not embeddings.enabled():
        return None
    try:
        return embeddings.embed_query(query)
    except embeddings.EmbeddingsUnavailable:
        return None


def _cosine(chunk: Chunk, question) -> float | None:
    if question is None or not chunk.embedding:
        return None
    vector = embeddings.from_bytes(chunk.embedding)
    return round(float(vector @ question), 4) if vector.shape == question.shape else None


def _by_meaning(question, pool: list[Passage]) -> list[Passage]:
    """The pool with each passage's cosine to the question (from its stored embedding), in
    the order of the reciprocal-rank fusion of the lexical rank and the cosine rank. Without
    embeddings, or with vectors of another width, the pool is returned as it is. Costs one
    question embedding: the pool's vectors came with its rows."""
    if question is None:
        return pool
    scored = [replace(passage, similarity=_cosine(passage.chunk, question)) for passage in pool]
    by_cosine = sorted((p for p in scored if p.similarity is not None),
                       key=lambda p: -p.similarity)
    fused = {id(p): 1.0 / (RRF_K + rank + 1) for rank, p in enumerate(scored)}
    for rank, passage in enumerate(by_cosine):
        fused[id(passage)] += 1.0 / (RRF_K + rank + 1)
    for rank, passage in enumerate(scored):
        if passage.similarity is None:  # not embedded yet (run `reindex`): its lexical rank
            fused[id(passage)] += 1.0 / (RRF_K + rank + 1)  # stands in for the cosine one
    return sorted(scored, key=lambda p: -fused[id(p)])


# --- Widening a hit to its section ---------------------------------------------------------
WIDEN_REACH = 8  # neighbouring chunks looked at on each side of a hit


def widen(passages: list[Passage], *, words: int | None = None, question=None,
          limit: int | None = None) -> list[Passage]:
    """Each passage grown to its section: the neighbouring chunks of its document under the
    same heading path (its subsections included), in document order, until `words`; then,
    while room is left, the sections around it. A list or procedure split over several
    chunks reaches the model whole. A passage whose chunk is already inside a better-ranked
    passage's text is dropped (it would repeat it) and the next one takes its place, up to
    `limit` passages. `question` (a vector) gives each section its cosine (`relevance`)."""
    budget = settings.EGRET_SOURCE_WORDS if words is None else words
    limit = len(passages) if limit is None else limit
    taken: set[int] = set()
    widened: list[Passage] = []
    cache = _Neighbourhood()
    start = 0
    while len(widened) < limit and start < len(passages):
        batch = passages[start:start + limit - len(widened)]
        start += len(batch)
        neighbours = cache.around(batch)
        for passage in batch:
            if passage.chunk.pk in taken:
                continue
            rows = neighbours.get(passage.chunk.document_id, [])
            chunks = _section_around(passage.chunk, rows, budget, taken)
            taken.update(chunk.pk for chunk in chunks)
            labelled = _labelled(chunks, passage.chunk)
            widened.append(replace(passage, context=_joined(labelled),
                                   relevance=_relevance(labelled, question)))
    return widened


class _Neighbourhood:
    """Chunk rows near hits, read once per widen(): a later batch of hits reads only the
    positions no earlier batch read (a pool's hits cluster in a few documents)."""

    def __init__(self) -> None:
        self.rows: dict = {}  # (document id, ordinal) -> row
        self.read: set = set()  # (document id, ordinal) positions already asked for

    def around(self, passages: list[Passage]) -> dict:
        """Each document's rows within WIDEN_REACH of a hit of `passages`, in order."""
        spans = _merged_spans(passages)
        missing: dict = {}
        for document_id, ranges in spans.items():
            for low, high in ranges:
                for ordinal in range(low, high + 1):
                    if (document_id, ordinal) not in self.read:
                        self.read.add((document_id, ordinal))
                        missing.setdefault(document_id, []).append([ordinal, ordinal])
        for document_id, positions in missing.items():
            missing[document_id] = _merged(positions)
        for row in _neighbour_rows(missing):
            self.rows[(row.document_id, row.ordinal)] = row
        by_document: dict = {}
        for document_id, ranges in spans.items():
            found = [self.rows[(document_id, ordinal)] for low, high in ranges
                     for ordinal in range(low, high + 1) if (document_id, ordinal) in self.rows]
            if found:
                by_document[document_id] = found
        return by_document


def _merged(ranges: list[list[int]]) -> list[list[int]]:
    ranges.sort()
    merged = [ranges[0]]
    for low, high in ranges[1:]:
        if low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _merged_spans(passages: list[Passage]) -> dict:
    """Per document, the ordinal ranges within WIDEN_REACH of its hits, merged, in order."""
    spans: dict[int, list[list[int]]] = {}
    for passage in passages:
        chunk = passage.chunk
        spans.setdefault(chunk.document_id, []).append(
            [max(0, chunk.ordinal - WIDEN_REACH), chunk.ordinal + WIDEN_REACH])
    return {document_id: _merged(ranges) for document_id, ranges in spans.items()}


_NEIGHBOUR_FIELDS = [Chunk._meta.get_field(name) for name in (
    "id", "document", "ordinal", "text", "section", "heading_path", "token_count", "embedding")]


class _Row:
    """A neighbouring chunk as widen() reads it: plain attributes, no model instance (a
    pool's neighbourhood is a hundred rows or so per answer)."""

    __slots__ = ("pk",) + tuple(field.attname for field in _NEIGHBOUR_FIELDS[1:])

    def __init__(self, values) -> None:
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


def _neighbour_rows(spans: dict) -> list[_Row]:
    """The rows of `spans` ({document id: [[low, high], ...]}) in one statement. Written by
    hand: the ORM spent more CPU compiling an OR of a range per hit than the database spent
    running it (docs/benchmarks.md, "Streamed answers at scale")."""
    where, params = [], []
    document_field = Chunk._meta.get_field("document")
    for document_id, ranges in spans.items():
        for low, high in ranges:
            where.append("(document_id = %s AND ordinal BETWEEN %s AND %s)")
            params += [document_field.get_db_prep_value(document_id, connection), low, high]
    if not where:
        return []
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _NEIGHBOUR_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {quote(Chunk._meta.db_table)} "
                       f"WHERE {' OR '.join(where)}", params)
        return [_Row(_converted(Chunk, _NEIGHBOUR_FIELDS, values))
                for values in cursor.fetchall()]


def _inside(chunk: Chunk, path: str) -> bool:
    return chunk.heading_path == path or chunk.heading_path.startswith(path + " › ")


def _section_around(hit: Chunk, rows: list[Chunk], budget: int, taken: set[int]) -> list[Chunk]:
    """The hit, then its section's chunks after and before it in turn, within budget; then,
    while room is left, the sections around it, nearest first (a two-line section says
    little without its neighbours). `rows` are one document's, in order."""
    index = next((i for i, row in enumerate(rows) if row.pk == hit.pk), None)
    if index is None:
        return [hit]
    span = [index, index]  # first and last position taken
    used = rows[index].token_count
    for inside in (True, False):
        grew = True
        while grew:
            grew = False
            for side in (1, 0):
                position = span[side] + (1 if side else -1)
                if not 0 <= position < len(rows):
                    continue
                row = rows[position]
                if (row.pk in taken or used + row.token_count > budget
                        or (inside and not _inside(row, hit.heading_path))):
                    continue
                span[side] = position
                used += row.token_count
                grew = True
    return rows[span[0]:span[1] + 1]


def _labelled(chunks: list[Chunk], hit: Chunk) -> list[tuple[Chunk, str]]:
    """Each chunk with the heading it is shown under in the passage text: "" for the
    passage's own section when the text opens with it (the source's heading covers it), a
    section's name wherever the text moves into another section, the hit's own included."""
    labelled: list[tuple[Chunk, str]] = []
    label = ""
    for index, chunk in enumerate(chunks):
        if index == 0:
            label = "" if chunk.heading_path == hit.heading_path else _name(chunk)
        elif chunk.heading_path != chunks[index - 1].heading_path:
            label = _name(chunk)
        labelled.append((chunk, label))
    return labelled


def _name(chunk: Chunk) -> str:
    return chunk.section or chunk.heading_path.rsplit(" › ", 1)[-1]


def _relevance(labelled: list[tuple[Chunk, str]], question) -> tuple[tuple[str, float], ...]:
    best: dict[str, float] = {}
    for chunk, label in labelled:
        cosine = _cosine(chunk, question)
        if cosine is not None:
            best[label] = max(cosine, best.get(label, -1.0))
    return tuple(best.items())


def _joined(labelled: list[tuple[Chunk, str]]) -> str:
    """The chunks' text without the sentences consecutive chunks share, each section after
    the first opening with its heading. A heading with no text of its own ("5. What We
    Monitor", straight before "5.1 Email and Network Traffic") is kept as a `###` line over
    its subsections, which are `####`: they read as one part of the document."""
    parts: list[str] = []
    previous: tuple[Chunk, str] | None = None
    group = ""  # the heading path of the text-less heading the chunks are under
    for chunk, label in labelled:
        text = chunk.text
        parent = _parent(chunk.heading_path)
        if group and parent != group:
            group = ""
        if previous is not None and previous[0].heading_path == chunk.heading_path:
            text = _without_overlap(previous[0].text, text)
        elif label:
            if previous is not None and not group and _empty_parent(previous[0], parent):
                group = parent
                text = f"### {_name_of(parent)}\n\n#### {label}\n\n{text}"
            else:
                text = f"{'####' if group else '###'} {label}\n\n{text}"
        if text:
            parts.append(text)
        previous = (chunk, label)
    return "\n\n".join(parts)


def _parent(path: str) -> str:
    return path.rsplit(" › ", 1)[0] if " › " in path else ""


def _name_of(path: str) -> str:
    return path.rsplit(" › ", 1)[-1]


def _empty_parent(before: Chunk, parent: str) -> bool:
    """`parent` (a heading path below the document's own) has no text: the chunk before the
    first one inside it, `before`, is outside it (the chunks of a passage are consecutive)."""
    return " › " in parent and not _inside(before, parent)


def _without_overlap(before: str, text: str) -> str:
    """`text` less its opening sentences that end `before` (the chunker's overlap)."""
    for end in range(len(text) - 1, 0, -1):
        if text[end].isspace() and text[end - 1] in ".!?:;" and before.endswith(text[:end]):
            return text[end:].lstrip()
    return text
