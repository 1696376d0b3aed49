"""Property tests: any documented spelling of a job document normalises to the same attributes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_models import ChunkAccepted, JobDocument
from kore_models.types import normalise_status

ID_KEYS = ["dockStatusId", "dock-statusId", "dockstatusId", "_id"]
URL_PLACES = [("response", "downloadUrl"), ("response", "downloadURL"), ("top", "downloadUrl")]
URL_PLACES += [("top", "downloadURL"), ("none", "")]
CANONICAL = ["IN_PROGRESS", "SUCCESS", "FAILED"]

# Ids the server may give: letters, digits, "-", "_" and "." (but not "." or ".." alone,
# which are no usable URL path segment and are refused, see test_transfer_hostile_state).
identifiers = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_."),
    min_size=1,
    max_size=40,
).filter(lambda text: text not in (".", ".."))
padding = st.sampled_from(["", " ", "  ", "\t", "\n", " \r\n"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
# extra keys never collide with a name the model knows (they all start with "x")
extra_keys = st.from_regex(r"x[A-Za-z0-9_-]{0,12}", fullmatch=True)


@st.composite
def status_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """A canonical status written in random case, with random spaces and underscores."""
    canonical = draw(st.sampled_from(CANONICAL))
    letters = [ch for ch in canonical if ch != "_"]
    written = ""
    for ch in letters:
        written += draw(st.sampled_from([ch.upper(), ch.lower()]))
        written += draw(st.sampled_from(["", "", "", " ", "_"]))
    return draw(padding) + written + draw(padding), canonical


@st.composite
def job_documents(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A raw job document and the attributes it must normalise to."""
    job_id = draw(identifiers)
    url = "https://host.example/dl/" + draw(identifiers)
    status, canonical = draw(status_spellings())
    place, url_key = draw(st.sampled_from(URL_PLACES))
    extras = draw(st.dictionaries(extra_keys, json_values, max_size=5))
    doc: dict[str, Any] = {draw(st.sampled_from(ID_KEYS)): draw(padding) + job_id + draw(padding)}
    doc["status"] = status
    if draw(st.booleans()):
        doc["modelId"] = "cm-" + job_id
    if draw(st.booleans()):
        doc["percentageComplete"] = draw(st.integers(min_value=0, max_value=100))
    padded_url = draw(padding) + url + draw(padding)
    if place == "response":
        doc["response"] = {url_key: padded_url}
    elif place == "top":
        doc[url_key] = padded_url
    doc.update(extras)
    keys = list(doc)
    order = draw(st.permutations(keys))
    shuffled = {k: doc[k] for k in order}
    expected = {
        "dock_status_id": job_id,
        "status": canonical,
        "download_url": None if place == "none" else url,
        "model_id": doc.get("modelId"),
        "percentage_complete": doc.get("percentageComplete"),
        "is_terminal": canonical != "IN_PROGRESS",
        "extra": extras,
    }
    return shuffled, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job_documents())
def test_any_spelling_normalises_to_the_same_attributes(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    raw, expected = case
    job = JobDocument.model_validate(raw)
    assert job.dock_status_id == expected["dock_status_id"]
    assert job.status == expected["status"]
    assert job.download_url == expected["download_url"]
    assert job.model_id == expected["model_id"]
    assert job.percentage_complete == expected["percentage_complete"]
    assert job.is_terminal == expected["is_terminal"]
    for key, value in expected["extra"].items():
        assert job.extra[key] == value
    # normalising again (from the model's own dump) changes nothing
    again = JobDocument.model_validate(job.model_dump())
    assert again.dock_status_id == job.dock_status_id
    assert again.status == job.status
    assert again.download_url == job.download_url


@settings(max_examples=200, deadline=None)
@given(status_spellings())
def test_status_normalisation_is_idempotent(case: tuple[str, str]) -> None:
    written, canonical = case
    assert normalise_status(written) == canonical
    assert normalise_status(normalise_status(written)) == canonical


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_any_status_text_is_accepted_and_only_the_documented_ones_end_a_job(text: str) -> None:
    job = JobDocument.model_validate({"_id": "ds-1", "status": text})
    assert job.status is not None
    assert job.is_terminal == (normalise_status(text) in ("SUCCESS", "FAILED"))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.booleans(), padding, padding)
def test_chunk_number_as_text_or_number(number: int, as_text: bool, left: str, right: str) -> None:
    echoed: Any = f"{left}{number}{right}" if as_text else number
    assert ChunkAccepted.model_validate({"chunkNumber": echoed}).chunk_number == number
