"""Label and field selectors, parsed and matched the way apimachinery does it.

Clients rely on the exact semantics (`a!=b` and `a notin (b)` also match objects that do not
carry label `a`; a nil `metav1.LabelSelector` selects nothing while `{}` selects everything)
and users read the error strings, so both follow upstream:
`staging/src/k8s.io/apimachinery/pkg/labels/selector.go` (lexer, parser, Requirement.Matches),
`staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go` (LabelSelectorAsSelector),
`staging/src/k8s.io/apimachinery/pkg/fields/selector.go` (splitTerms/splitTerm/UnescapeValue),
`pkg/registry/core/pod/strategy.go` ToSelectableFields and `pkg/apis/core/v1/conversion.go`
(which field labels each kind supports).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from typing import Literal

Operator = Literal["in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt"]


class SelectorError(ValueError):
    """A selector that cannot be parsed or is invalid; the message is upstream's one-line reason."""


# ---------------------------------------------------------------------------------------------
# Name and value syntax (staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go)
# ---------------------------------------------------------------------------------------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = f"{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_MAX = 253
_QUALIFIED_NAME_MAX = 63
_LABEL_VALUE_MAX = 63


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError: the rule, examples, then the regex itself."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


_QUALIFIED_NAME_ERR = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " \
    "alphanumeric character"


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name` where prefix is a DNS subdomain and name <= 63 characters."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT,
                                                  "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(_QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append(max_len_error(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character",
            _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _go_quote(value: object) -> str:
    """How field.Invalid renders a value: strings `%q`, string slices `%#v` (`[]string{"a"}`)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[]string{" + ", ".join(_go_quote(str(v)) for v in value) + "}"
    return str(value)


def _invalid(path: str, value: object, detail: str) -> str:
    return f"{path}: Invalid value: {_go_quote(value)}: {detail}"


# ---------------------------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------------------------

_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One term of a label selector: key, operator and (sorted, de-duplicated) values."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("in", "=", "=="):
            return self.key in labels and labels[self.key] in self.values
        if op in ("notin", "!="):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        # gt / lt: both sides must be base-10 integers, otherwise no match (as upstream).
        if self.key not in labels or len(self.values) != 1:
            return False
        try:
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        except ValueError:
            return False
        return have > want if op == "gt" else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return f"!{self.key}"
        joined = ",".join(sorted(self.values))
        if op in ("in", "notin"):
            return f"{self.key} {op} ({joined})"
        symbol = {"gt": ">", "lt": "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


def _parse_int64(text: str) -> int:
    """strconv.ParseInt(s, 10, 64): optional sign, decimal digits only, in int64 range."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"not an integer: {text!r}")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"out of range: {text!r}")
    return value


def new_requirement(key: str, operator: Operator, values: Collection[str], path: str = "") -> Requirement:
    """labels.NewRequirement: validate the key, the value count for the operator, and each value."""
    errs: list[str] = []
    prefix = f"{path}." if path else ""
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid(f"{prefix}key", key, "; ".join(key_errs)))
    vals = list(values)
    values_path = f"{prefix}values"
    if operator in ("in", "notin"):
        if not vals:
            errs.append(_invalid(values_path, vals, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in ("=", "==", "!="):
        if len(vals) != 1:
            errs.append(_invalid(values_path, vals, "exact-match compatibility requires one single value"))
    elif operator in ("exists", "!"):
        if vals:
            errs.append(_invalid(values_path, vals, "values set must be empty for exists and does not exist"))
    elif operator in ("gt", "lt"):
        if len(vals) != 1:
            errs.append(_invalid(values_path, vals, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            try:
                _parse_int64(v)
            except ValueError:
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                errs.append(_invalid(f"{values_path}[{i}]", v, detail))
    for i, v in enumerate(vals):
        value_errs = label_value_errors(v)
        if value_errs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise SelectorError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, operator, tuple(sorted(set(vals))))


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """AND of requirements. `nothing=True` is labels.Nothing(): it matches no object at all."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (labels.Everything())."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have (from `=`, `==` or a one-value `in`), if the selector pins it."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in ("=", "==", "in") and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _sorted_by_key(reqs: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))  # stable, like sort.Sort(ByKey) for distinct keys


# --- lexer -------------------------------------------------------------------------------------

_Token = Literal["error", "eos", ")", ",", "!", "==", "=", ">", "id", "in", "<", "!=", "notin", "("]
_KEYWORDS: Mapping[str, _Token] = {
    ")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "in": "in", "<": "<", "!=": "!=",
    "notin": "notin", "(": "(",
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[_Token, str]]:
    """Tokenise like apimachinery's Lexer: identifiers run until whitespace or an operator character."""
    tokens: list[tuple[_Token, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            tokens.append(("eos", ""))
            return tokens
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still forms a known operator.
            buf, last, consumed = "", None, 0
            while pos + consumed < n and text[pos + consumed] in _SPECIAL:
                buf += text[pos + consumed]
                if buf in _KEYWORDS:
                    last = (_KEYWORDS[buf], buf)
                    consumed += 1
                elif last is not None:
                    break
                else:
                    consumed += 1
            if last is None:
                tokens.append(("error", f"error expected: keyword found '{buf}'"))
                pos += consumed
            else:
                tokens.append(last)
                pos += len(last[1])
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        token = _KEYWORDS.get(word)
        tokens.append((token, word) if token in ("in", "notin") else ("id", word))


class _Parser:
    """Recursive descent over the token list, with upstream's error messages."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _value_context(self, tok: _Token) -> _Token:
        # `in`/`notin` are plain identifiers where a key or value is expected.
        return "id" if tok in ("in", "notin") else tok

    def lookahead(self, values: bool = True) -> tuple[_Token, str]:
        tok, lit = self.tokens[self.pos]
        return (self._value_context(tok) if values else tok), lit

    def consume(self, values: bool = True) -> tuple[_Token, str]:
        tok, lit = self.tokens[self.pos]
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return (self._value_context(tok) if values else tok), lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in ("id", "!"):
                try:
                    reqs.append(self.requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                tok2, lit2 = self.consume()
                if tok2 == "eos":
                    return reqs
                if tok2 == ",":
                    tok3, lit3 = self.lookahead()
                    if tok3 not in ("id", "!"):
                        raise SelectorError(f"found '{lit3}', expected: identifier after ','")
                    continue
                raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            if tok == "eos":
                return reqs
            raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        negated = False
        tok, lit = self.consume()
        if tok == "!":
            negated = True
            tok, lit = self.consume()
        if tok != "id":
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        key_errs = qualified_name_errors(key)
        if key_errs:
            raise SelectorError(_invalid("<nil>", key, "; ".join(key_errs)))
        nxt, _ = self.lookahead()
        if negated:
            # Upstream returns DoesNotExist without reading further, so `!a=b` then fails on the `=`.
            return new_requirement(key, "!", ())
        if nxt in ("eos", ","):
            return new_requirement(key, "exists", ())
        op = self.operator()
        if op in ("in", "notin"):
            values = self.value_set()
        else:
            values = self.exact_value()
        return new_requirement(key, op, values)

    def operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        mapping: Mapping[str, Operator] = {
            "in": "in", "=": "=", "==": "==", ">": "gt", "<": "lt", "notin": "notin", "!=": "!=",
        }
        if tok in mapping:
            return mapping[tok]
        raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")

    def value_set(self) -> list[str]:
        tok, lit = self.consume()
        if tok != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in ("id", ","):
            values = self.identifiers()
            tok2, _ = self.consume()
            if tok2 != ")":
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == ")":
            self.consume()
            return [""]
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> list[str]:
        found: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == "id":
                found.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    return sorted(found)
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                if not found:
                    found.add("")  # "(,"
                tok2, _ = self.lookahead()
                if tok2 in (")", ","):
                    found.add("")  # ",)" and ",,"
                if tok2 == ")":
                    return sorted(found)
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        tok, _ = self.lookahead()
        if tok in ("eos", ","):
            return [""]
        tok, lit = self.consume()
        if tok == "id":
            return [lit]
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the string form (`app=web,tier in (a,b),!canary`); "" selects everything.

    Raises SelectorError with upstream's message, e.g. `unable to parse requirement: ...` or
    `found 'b', expected: ',' or 'end of string'`.
    """
    reqs = _Parser(text).parse()
    return LabelSelector(_sorted_by_key(reqs))


_API_OPERATORS: Mapping[str, Operator] = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_api(sel: Mapping[str, object] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` selects everything."""
    if sel is None:
        return NOTHING
    match_labels = sel.get("matchLabels") or {}
    match_expressions = sel.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(match_expressions, list):
        raise SelectorError("matchLabels must be a map and matchExpressions a list")
    if not match_labels and not match_expressions:
        return EVERYTHING
    reqs: list[Requirement] = []
    for key, value in match_labels.items():
        reqs.append(new_requirement(str(key), "=", [str(value)]))
    for expr in match_expressions:
        if not isinstance(expr, Mapping):
            raise SelectorError(f"matchExpressions entries must be objects, got {expr!r}")
        raw_op = expr.get("operator")
        op = _API_OPERATORS.get(str(raw_op))
        if op is None:
            raise SelectorError(f'"{raw_op}" is not a valid label selector operator')
        raw_values = expr.get("values") or []
        if not isinstance(raw_values, list):
            raise SelectorError(f"matchExpressions values must be a list, got {raw_values!r}")
        reqs.append(new_requirement(str(expr.get("key", "")), op, [str(v) for v in raw_values]))
    return LabelSelector(_sorted_by_key(reqs))


# ---------------------------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        # fields.Set.Get returns "" for a missing field, so `spec.nodeName=` selects unscheduled pods.
        return (fields.get(self.field, "") == self.value) != self.negated


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(t.matches(fields) for t in self.terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal, if some `=`/`==` term pins it (lets a store index by name/node)."""
        for t in self.terms:
            if t.field == field and not t.negated:
                return t.value
        return None

    def __str__(self) -> str:
        return ",".join(f"{t.field}{'!=' if t.negated else '='}{escape_field_value(t.value)}" for t in self.terms)


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=`."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """fields.UnescapeValue; a bare `,`/`=` or an unknown escape is an error."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parse `f=v,g!=w` (escapes per apimachinery) and reject fields the kind does not support."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        if lhs not in supported:
            raise SelectorError(f"field label not supported: {lhs}")
        terms.append(FieldTerm(lhs, value, negated=(op == "!=")))
    return FieldSelector(tuple(terms))


# --- selectable fields per kind --------------------------------------------------------------

_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

_KIND_FIELDS: Mapping[str, frozenset[str]] = {
    # pkg/registry/core/pod/strategy.go ToSelectableFields
    "Pod": _META_FIELDS | {
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    },
    # pkg/registry/core/event/strategy.go ToSelectableFields
    "Event": _META_FIELDS | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    },
    "Node": _META_FIELDS | {"spec.unschedulable"},
    # Namespaces and PVs also answer to a bare "name" ("a bug kept for backward compatibility" upstream).
    "Namespace": _META_FIELDS | {"status.phase", "name"},
    "PersistentVolume": _META_FIELDS | {"name"},
    "Secret": _META_FIELDS | {"type"},
}


def supported_fields(kind: str) -> frozenset[str]:
    """The field labels a list/watch of `kind` may select on (everything else: `field label not supported`)."""
    return _KIND_FIELDS.get(kind, _META_FIELDS)


def _get(obj: Mapping[str, object], *path: str) -> object:
    cur: object = obj
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _s(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def object_fields(kind: str, obj: Mapping[str, object]) -> dict[str, str]:
    """The field set a field selector is matched against for this object."""
    fields = {"metadata.name": _s(_get(obj, "metadata", "name")),
              "metadata.namespace": _s(_get(obj, "metadata", "namespace"))}
    if kind == "Pod":
        pod_ips = _get(obj, "status", "podIPs")
        pod_ip = _get(obj, "status", "podIP")
        if isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], Mapping):
            pod_ip = pod_ips[0].get("ip")
        fields.update({
            "spec.nodeName": _s(_get(obj, "spec", "nodeName")),
            "spec.restartPolicy": _s(_get(obj, "spec", "restartPolicy")),
            "spec.schedulerName": _s(_get(obj, "spec", "schedulerName")),
            "spec.serviceAccountName": _s(_get(obj, "spec", "serviceAccountName")),
            "spec.hostNetwork": _s(bool(_get(obj, "spec", "hostNetwork"))),
            "status.phase": _s(_get(obj, "status", "phase")),
            "status.podIP": _s(pod_ip),
            "status.nominatedNodeName": _s(_get(obj, "status", "nominatedNodeName")),
        })
    elif kind == "Event":
        source = _get(obj, "source", "component") or _get(obj, "reportingComponent")
        for sub in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            fields[f"involvedObject.{sub}"] = _s(_get(obj, "involvedObject", sub))
        fields.update({
            "reason": _s(_get(obj, "reason")),
            "reportingComponent": _s(_get(obj, "reportingComponent")),
            "source": _s(source),
            "type": _s(_get(obj, "type")),
        })
    elif kind == "Node":
        fields["spec.unschedulable"] = _s(bool(_get(obj, "spec", "unschedulable")))
    elif kind == "Namespace":
        fields["status.phase"] = _s(_get(obj, "status", "phase"))
        fields["name"] = fields["metadata.name"]
    elif kind == "PersistentVolume":
        fields["name"] = fields["metadata.name"]
    elif kind == "Secret":
        fields["type"] = _s(_get(obj, "type"))
    return fields
