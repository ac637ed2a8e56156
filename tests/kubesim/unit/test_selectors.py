"""Label and field selectors behave like apimachinery's (docs/kubesim.md A2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesim.apiserver import selectors
from kubesim.apiserver.selectors import SelectorError

# --- worked examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app!=web", {}, True),  # != matches objects without the label
        ("app!=web", {"app": "web"}, False),
        ("app in (web,db)", {"app": "db"}, True),
        ("app in (web,db)", {}, False),
        ("app notin (web)", {}, True),  # notin too
        ("app notin (web)", {"app": "web"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": ""}, False),
        ("!app", {"other": "x"}, True),
        ("a=1,b in (x,y),!c", {"a": "1", "b": "y"}, True),
        ("a=1,b in (x,y),!c", {"a": "1", "b": "y", "c": "z"}, False),
        ("  a = 1 ,  b  ", {"a": "1", "b": "2"}, True),
        ("a=", {"a": ""}, True),
        ("a in ()", {"a": ""}, True),
        ("n>3", {"n": "4"}, True),
        ("n>3", {"n": "x"}, False),
        ("n<3", {"n": "-1"}, True),
        ("example.com/role=x", {"example.com/role": "x"}, True),
        ("", {"whatever": "x"}, True),
        ("app in ( web , db ),tier notin(x)", {"app": "db"}, True),
        ("in in (in),notin", {"in": "in", "notin": ""}, True),  # keywords are plain words where a key is due
    ],
)
def test_label_selector_matches_like_apimachinery(text: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("n>x", "unable to parse requirement: values[0]: Invalid value: \"x\": "
                "for 'Gt', 'Lt' operators, the value must be an integer"),
    ],
)
def test_malformed_label_selector_gets_upstream_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_label_selector(text)
    assert str(info.value) == message


def test_invalid_label_key_is_reported_with_the_nil_path_like_upstream() -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_label_selector("-a=b")
    assert str(info.value).startswith('unable to parse requirement: <nil>: Invalid value: "-a": name part must')


def test_overlong_label_value_is_rejected() -> None:
    with pytest.raises(SelectorError, match="must be no more than 63 characters"):
        selectors.parse_label_selector("a=" + "x" * 64)


def test_values_are_deduplicated_and_sorted_and_requirements_sorted_by_key() -> None:
    sel = selectors.parse_label_selector("z in (b,a,b),a")
    assert str(sel) == "a,z in (a,b)"
    assert sel.requirements[1].values == ("a", "b")


def test_requires_exact_match_reports_a_pinned_label() -> None:
    assert selectors.parse_label_selector("app=web,x").requires_exact_match("app") == "web"
    assert selectors.parse_label_selector("app in (web)").requires_exact_match("app") == "web"
    assert selectors.parse_label_selector("app!=web").requires_exact_match("app") is None


# --- metav1.LabelSelector --------------------------------------------------------------------


def test_nil_api_selector_selects_nothing_and_empty_selects_everything() -> None:
    nothing = selectors.label_selector_from_api(None)
    everything = selectors.label_selector_from_api({})
    assert not nothing.matches({})
    assert not nothing.matches({"a": "b"})
    assert not nothing.empty
    assert everything.matches({"a": "b"})
    assert everything.empty


def test_api_selector_combines_match_labels_and_expressions() -> None:
    sel = selectors.label_selector_from_api({
        "matchLabels": {"app": "ckpt"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["z9"]},
            {"key": "owner", "operator": "Exists"},
        ],
    })
    assert sel.matches({"app": "ckpt", "tier": "a", "owner": "me"})
    assert not sel.matches({"app": "ckpt", "tier": "a", "owner": "me", "canary": "1"})
    assert not sel.matches({"app": "ckpt", "tier": "c", "owner": "me"})
    assert not sel.matches({"app": "ckpt", "tier": "a", "owner": "me", "zone": "z9"})


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
         '"Gt" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
         "for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
         "values set must be empty for exists and does not exist"),
        ({"matchLabels": {"a": "b c"}}, "a valid label must be an empty string"),
    ],
)
def test_invalid_api_selector_raises(sel: dict[str, object], message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        selectors.label_selector_from_api(sel)


# --- reference model --------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "app", "example.com/x"])
VALUES = st.sampled_from(["", "1", "v", "web", "x-y"])


@st.composite
def requirement_texts(draw: st.DrawFn) -> tuple[str, tuple[str, str, frozenset[str]]]:
    key = draw(KEYS)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    if op in ("in", "notin"):
        values = draw(st.lists(VALUES, min_size=1, max_size=3))
        shown = ",".join(values)
        return f"{key} {op} ({shown})", (key, op, frozenset(values))
    if op == "exists":
        return key, (key, op, frozenset())
    if op == "!":
        return f"!{key}", (key, op, frozenset())
    value = draw(VALUES)
    return f"{key}{op}{value}", (key, op, frozenset({value}))


def model_matches(reqs: list[tuple[str, str, frozenset[str]]], labels: dict[str, str]) -> bool:
    """The documented semantics written out plainly, independent of the parser's data structures."""
    for key, op, values in reqs:
        present = key in labels
        if op in ("=", "==", "in") and not (present and labels[key] in values):
            return False
        if op in ("!=", "notin") and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    st.lists(requirement_texts(), min_size=0, max_size=4),
    st.dictionaries(KEYS, VALUES, max_size=4),
    st.sampled_from([",", ", ", " ,  "]),
)
def test_parsed_selector_agrees_with_reference_model(
    reqs: list[tuple[str, tuple[str, str, frozenset[str]]]], labels: dict[str, str], sep: str,
) -> None:
    text = sep.join(t for t, _ in reqs)
    sel = selectors.parse_label_selector(text)
    assert sel.matches(labels) is model_matches([m for _, m in reqs], labels)


@settings(max_examples=200, deadline=None)
@given(st.lists(requirement_texts(), min_size=0, max_size=4), st.dictionaries(KEYS, VALUES, max_size=4))
def test_string_form_round_trips(
    reqs: list[tuple[str, tuple[str, str, frozenset[str]]]], labels: dict[str, str],
) -> None:
    sel = selectors.parse_label_selector(",".join(t for t, _ in reqs))
    again = selectors.parse_label_selector(str(sel))
    assert again.matches(labels) is sel.matches(labels)
    assert str(again) == str(sel)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=!,() in\tx", max_size=20))
def test_arbitrary_text_either_parses_or_raises_selector_error(text: str) -> None:
    message = ""
    try:
        selectors.parse_label_selector(text)
    except SelectorError as exc:
        message = str(exc) or "<empty message>"
    assert "\n" not in message
    assert message != "<empty message>"


# --- field selectors ----------------------------------------------------------------------------

POD_FIELDS = selectors.supported_fields("Pod")


def test_field_selector_matches_pods_by_node_and_phase() -> None:
    pod = {"metadata": {"name": "w-0", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    fields = selectors.object_fields("Pod", pod)
    assert selectors.parse_field_selector("spec.nodeName=n1", POD_FIELDS).matches(fields)
    assert selectors.parse_field_selector("spec.nodeName==n1,status.phase!=Failed", POD_FIELDS).matches(fields)
    assert not selectors.parse_field_selector("status.phase=Pending", POD_FIELDS).matches(fields)
    assert selectors.parse_field_selector("metadata.name=w-0,metadata.namespace=ns", POD_FIELDS).matches(fields)


def test_empty_field_value_selects_unscheduled_pods() -> None:
    unscheduled = selectors.object_fields("Pod", {"metadata": {"name": "p"}, "spec": {}})
    scheduled = selectors.object_fields("Pod", {"metadata": {"name": "p"}, "spec": {"nodeName": "n"}})
    sel = selectors.parse_field_selector("spec.nodeName=", POD_FIELDS)
    assert sel.matches(unscheduled)
    assert not sel.matches(scheduled)


def test_unsupported_field_label_is_refused_with_upstream_message() -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_field_selector("spec.foo=bar", POD_FIELDS)
    assert str(info.value) == "field label not supported: spec.foo"
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.nodeName"):
        selectors.parse_field_selector("spec.nodeName=x", selectors.supported_fields("PersistentVolumeClaim"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_malformed_field_selector_gets_upstream_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selectors.parse_field_selector(text, POD_FIELDS)
    assert str(info.value) == message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_escaped_field_values_round_trip(value: str) -> None:
    sel = selectors.parse_field_selector("metadata.name=" + selectors.escape_field_value(value), POD_FIELDS)
    assert sel.requires_exact_match("metadata.name") == value
    assert sel.matches({"metadata.name": value})
    assert selectors.parse_field_selector(str(sel), POD_FIELDS) == sel


def test_event_fields_cover_involved_object_reason_type_and_source() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "w-0", "namespace": "ns", "uid": "u1"},
        "reason": "FailedScheduling", "type": "Warning", "source": {"component": "default-scheduler"},
    }
    fields = selectors.object_fields("Event", event)
    sel = selectors.parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.name=w-0,involvedObject.uid=u1,reason=FailedScheduling,"
        "type=Warning,source=default-scheduler", selectors.supported_fields("Event"))
    assert sel.matches(fields)


def test_node_unschedulable_and_pod_ip_fields() -> None:
    node = selectors.object_fields("Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}})
    assert node["spec.unschedulable"] == "true"
    assert selectors.object_fields("Node", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"
    pod = selectors.object_fields("Pod", {"metadata": {"name": "p"}, "status": {"podIPs": [{"ip": "127.0.0.5"}]}})
    assert pod["status.podIP"] == "127.0.0.5"
    assert set(selectors.object_fields("Pod", {"metadata": {}})) == POD_FIELDS


def test_namespaces_and_volumes_also_answer_to_a_bare_name_field() -> None:
    sel = selectors.parse_field_selector("name=pv-1", selectors.supported_fields("PersistentVolume"))
    assert sel.matches(selectors.object_fields("PersistentVolume", {"metadata": {"name": "pv-1"}}))


def test_supported_fields_match_the_object_field_sets() -> None:
    for kind in ("Pod", "Event", "Node", "Namespace", "Secret", "StatefulSet", "PersistentVolumeClaim",
                 "PersistentVolume"):
        assert set(selectors.object_fields(kind, {"metadata": {"name": "x"}})) == selectors.supported_fields(kind)
