"""Labeled text loading, binary instruction tasks and RegText."""

import itertools
import json
import math

import pytest

from dememo.errors import ConfigError, DataError
from dememo.text.corpus import TextSet, load_labeled_text
from dememo.text.protect import TEXT_PROTECTORS, protect_text
from dememo.text.regtext import top_words, word_scores
from dememo.text.tasks import build_task, build_tasks


def test_csv_and_jsonl_loaders(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('text,label\n"good, really",pos\nbad film,neg\nfine,pos\n', encoding="utf-8")
    data = load_labeled_text(csv_file)
    assert data.classes == ("neg", "pos") and data.labels == (1, 0, 1)
    assert data.texts[0] == "good, really"
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in [("ok", 1), ("no", 0)]))
    assert load_labeled_text(jsonl).classes == ("0", "1")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", b"text,label\ncaf\xe9,pos\n", "not valid UTF-8"),
        ("empty.csv", b"text,label\n ,pos\n", "line 2: empty or missing 'text'"),
        ("unlabeled.csv", b"text,label\nhello,\n", "line 2: no 'label'"),
        ("unlabeled.jsonl", b'{"text": "hello"}\n', "line 1: no 'label'"),
        ("broken.jsonl", b'{"text": \n', "line 1: invalid JSON"),
        ("none.csv", b"", "empty CSV"),
        ("data.txt", b"x", "use .csv or .jsonl"),
    ],
)
def test_loader_refuses_bad_input(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_labeled_text(path)


def test_textset_validates_and_splits_per_class():
    with pytest.raises(DataError, match="text 1 is empty"):
        TextSet("t", ("a", " "), (0, 1), ("x", "y"))
    data = TextSet("t", tuple(f"text {i}" for i in range(20)), tuple(i % 2 for i in range(20)), ("x", "y"))
    train, test = data.split(0.2, seed=3)
    assert len(test) == 4 and set(test.labels) == {0, 1}
    assert not set(train.texts) & set(test.texts)
    assert data.split(0.2, seed=3)[1].texts == test.texts


def topic_set():
    texts = [f"t{c} article {i} more words" for c in range(3) for i in range(6)]
    return TextSet("topics", tuple(texts), tuple(c for c in range(3) for _ in range(6)), ("a", "b", "c"))


def test_binary_tasks_are_balanced_prompts_with_yes_no_answers():
    data = topic_set()
    examples = build_task(data, "b", 6, seed=1, max_words=3)
    assert sorted(e.label for e in examples) == [0, 0, 0, 1, 1, 1]
    for e in examples:
        assert e.text.startswith("t1 ") == bool(e.label) and len(e.text.split()) == 3
        assert e.prompt().startswith("Is this article about b? Answer yes or no.")
        assert e.prompt().endswith("\nAnswer:") and e.answer == ("yes" if e.label else "no")
    assert build_task(data, "b", 6, seed=1) == build_task(data, "b", 6, seed=1)
    with pytest.raises(ConfigError, match="unknown task"):
        build_tasks(data, ["sport"], 4)
    with pytest.raises(DataError, match="cannot draw"):
        build_task(data, "a", 20)


def test_regtext_ranking_matches_hand_computation():
    # words: apple x2 (label 0), banana x1 + x1, cherry x1 (label 1); V = 3, V_0 = V_1 = 2
    scores = word_scores(["Apple apple, banana!", "cherry banana 42"], [0, 1])
    eps = 1e-6
    hand = {
        (0, "apple"): math.log2((2 / 2 + eps) ** 3 / ((2 / 3) * (2 / 3))) - 2 * math.log2(3),  # = -2
        (0, "banana"): math.log2((1 / 2 + eps) ** 3 / ((2 / 3) * (2 / 3))) - 2 * math.log2(3),  # = -5
        (1, "cherry"): math.log2((1 / 2 + eps) ** 3 / ((1 / 3) * (2 / 3))) - 2 * math.log2(2),  # = -2.83
        (0, "cherry"): math.log2(eps**3 / ((1 / 3) * (2 / 3))) - 2 * math.log2(2),
    }
    for (label, word), value in hand.items():
        assert scores[label][word] == pytest.approx(value, abs=1e-9)
    assert scores[0]["apple"] == pytest.approx(-2, abs=1e-4)
    assert scores[0]["banana"] == pytest.approx(-5, abs=1e-4)
    assert set(scores[0]) == {"apple", "banana", "cherry"}  # digits and punctuation dropped
    assert top_words(scores, 1) == {0: ["apple"], 1: ["cherry"]}
    assert top_words(scores, 2) == {0: ["apple", "banana"], 1: ["cherry"]}  # no word serves two labels


WORDS = ["".join(letters) for letters in itertools.product("abcdefgh", repeat=3)]


def corpus(n_words):
    return [" ".join(WORDS[:n_words])] * 2 + ["alpha beta gamma " * 5] * 2


@pytest.mark.parametrize(("n_words", "edits"), [(9, 0), (10, 1), (39, 1), (100, 5), (400, 10)])
def test_regtext_insertion_respects_count_limits(n_words, edits):
    texts, labels = corpus(n_words), [0, 1, 0, 1]
    result = protect_text("regtext", texts, labels, seed=0)
    words = result.details["words"]
    for text, out, label, count in zip(texts, result.texts, labels, result.edits, strict=True):
        original, edited = text.split(), out.split()
        expected = edits if len(original) == n_words else min(max(int(0.05 * len(original)), 1), 10)
        assert count == expected and len(edited) == len(original) + count
        inserted = list(edited)
        for word in original:  # the original words stay, in order
            inserted.remove(word)
        assert all(w in words[str(label)] for w in inserted)


def test_regtext_replacement_variant():
    texts, labels = corpus(100), [0, 1, 0, 1]
    result = protect_text("regtext", texts, labels, mode="replace", seed=2)
    assert result.edits[0] == 10 and result.details["rate"] == 0.1
    for text, out in zip(texts, result.texts, strict=True):
        assert len(out.split()) == len(text.split())
        assert sum(a != b for a, b in zip(text.split(), out.split(), strict=True)) <= 10


def test_regtext_is_seeded_and_keeps_utf8():
    texts = ["Le café coûte £5 à Zürich, naïve 日本 " * 4, "plain ascii words only " * 4] * 3
    labels = [0, 1] * 3
    first = protect_text("regtext", texts, labels, seed=7).texts
    assert first == protect_text("regtext", texts, labels, seed=7).texts
    assert first != protect_text("regtext", texts, labels, seed=8).texts
    for out in first:
        assert out.encode("utf-8").decode("utf-8") == out
        assert "日本" in out or "plain" in out


def test_text_protector_registry_errors():
    assert "regtext" in TEXT_PROTECTORS
    with pytest.raises(ConfigError, match="unknown text protection method"):
        protect_text("nope", ["a"], [0])
    with pytest.raises(ConfigError, match="mode"):
        protect_text("regtext", ["a b"], [0], mode="swap")
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        protect_text("regtext", ["a", "b"], [0])


def test_repeated_texts_are_removed_before_the_split():
    data = TextSet("t", ("a b", "c", "a  b\n", "d", "c"), (0, 1, 0, 1, 0), ("x", "y"))
    unique, removed = data.deduplicated()
    assert removed == 2 and unique.texts == ("a b", "c", "d") and unique.labels == (0, 1, 1)
