"""Reports: facts from a real analysis, the rules writer, the grounding check, the local writer on a
tiny random model (same code path as the real one), storage and the `report` CLI."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest

from core.report import (
    BadReportInput,
    LectureFacts,
    StudentFacts,
    apply_input,
    build_facts,
    check,
    generate,
    input_string,
    list_reports,
    repair,
    rules,
    save_report,
)
from core.report.facts import EmotionFact, Fatigue, Period
from core.report.grounding import NUMBER
from core.report.writers import ReportConfig
from tests.conftest import ROOT

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer LlamaForCausalLM with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-lm")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<eos>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    text = ["Suggest a short break before attention drops.", "Praise the class for its focus.", "Student 1 0:05"]
    tok.train_from_iterator(text * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
    )  # fmt: skip
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def real_facts(analysed_db) -> LectureFacts:
    store, result = analysed_db
    return build_facts(store, result.lecture_id)


def _numbers(text: str, names: tuple[str, ...]) -> list[str]:
    for n in names:
        text = text.replace(n, "")
    return [m.group(0) for m in NUMBER.finditer(text)]


# -- facts and the rules writer on a real analysis ---------------------------------------------------


def test_facts_of_real_video(real_facts):
    f = real_facts
    assert len(f.students) == 1 and f.names == ("Student 1",)
    assert f.duration_s == pytest.approx(19.685, abs=0.01)
    assert f.engagement is not None and 0 < f.engagement < 1 and f.presence == 1.0
    # The student closes their eyes in the first seconds (eyes_open 0 in the fixture): a drop, and fatigue.
    assert f.low_periods and f.low_periods[0].start_s < 5
    assert f.students[0].fatigue is not None and f.students[0].fatigue.longest_s >= 1.5
    assert f.emotions and abs(sum(e.share for e in f.emotions) - 1) < 1e-6
    assert input_string(f).startswith("Student 1: presence=1.00; engagement=")


def test_rules_writer_real_video_is_grounded(real_facts):
    text = rules.report_text(real_facts)
    assert "Evidence:" in text and "cannot tell" in text
    assert check(text, real_facts).ok, check(text, real_facts).problems
    # Independently of the checker: each number written is one of the facts' figures as rendered.
    figures = real_facts.figures()
    for token in _numbers(text, (*real_facts.names, real_facts.file_name)):
        if ":" in token:
            m, s = token.split(":")
            assert int(m) * 60 + int(s) in real_facts.times(), token
        else:
            v = float(token.rstrip("% "))
            d = len(token.rstrip("% ").split(".")[1]) if "." in token else 0
            scale = 100 if token.endswith("%") else 1
            assert any(round(a * scale, d) == round(v, d) for a in figures), token


def test_attention_only_mentions_no_emotion(analysed_db):
    store, result = analysed_db
    facts = build_facts(store, result.lecture_id, attention_only=True)
    text = rules.report_text(facts)
    assert not re.search(r"happy|sad|fear|angry|surpris|disgust|neutral|emotion|expression", text, re.I)
    assert check(text, facts).ok
    assert "happy" not in input_string(facts)


def _facts(**kw) -> LectureFacts:
    base = LectureFacts(
        lecture_id=1, file_name="lecture.mp4", duration_s=3600.0, attention_only=False, bin_s=60,
        students=(StudentFacts("Student 1", 1.0, 3600.0, engagement=0.8),), presence=1.0, engagement=0.8,
        first_half=0.8, second_half=0.8,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)


DROP = Period(start_s=1800.0, end_s=2100.0, engagement=0.4, before=0.8)
TIRED = Fatigue(0.2, 30.0)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (_facts(), set()),
        (_facts(low_periods=(DROP,)), {"break", "focus", "study", "strategy"}),  # no emotions measured
        (_facts(attention_only=True, low_periods=(DROP,)), {"break", "focus", "study", "strategy"}),
        (_facts(duration_s=300.0, low_periods=(Period(120.0, 240.0, 0.4),)), {"focus", "study", "strategy"}),
        (_facts(first_half=0.8, second_half=0.6), {"break"}),
        (_facts(duration_s=120.0, first_half=0.8, second_half=0.6), set()),  # too short for a break
        (_facts(engagement=0.45), {"focus"}),
        (_facts(students=(StudentFacts("Student 1", 1.0, 3600.0, 0.8, fatigue=TIRED),)), {"study"}),
        (_facts(students=(StudentFacts("Student 1", 1.0, 3600.0, 0.8, fatigue=Fatigue(0.2, 1.0)),)), set()),
        (_facts(high_periods=(Period(600.0, 900.0, 0.95),)), {"motivation"}),
        (_facts(emotions=(EmotionFact("happy", 0.6), EmotionFact("neutral", 0.4))), {"motivation"}),
        (_facts(emotions=(EmotionFact("sad", 0.5), EmotionFact("neutral", 0.5))), {"motivation", "strategy"}),
    ],
)
def test_kinds_follow_their_triggers(facts, expected):
    recs = rules.recommendations(facts)
    assert {r.kind for r in recs} == expected
    text = rules.report_text(facts)
    assert check(text, facts).ok, check(text, facts).problems


def test_break_is_suggested_before_the_drop():
    facts = _facts(low_periods=(DROP,))
    brk = next(r for r in rules.recommendations(facts) if r.kind == "break")
    assert "30:00–35:00" in brk.evidence and "around 25:00" in brk.advice


def test_students_who_need_it_get_their_own_section():
    facts = _facts(
        students=(
            StudentFacts("Ada", 1.0, 3600.0, engagement=0.9),
            StudentFacts("Student 2", 1.0, 3600.0, engagement=0.5, low_periods=(DROP,)),
        )
    )
    text = rules.report_text(facts)
    assert "## For Student 2" in text and "## For Ada" not in text
    assert "Check in with Student 2" in text and "the class held up" in text
    assert check(text, facts).ok


def test_one_tired_student_is_not_a_tired_class():
    """One student's long look-down is that student's point, never class tiredness."""
    others = tuple(StudentFacts(f"Student {i}", 1.0, 3600.0, 0.8, fatigue=Fatigue(0.0, 0.0)) for i in (2, 3, 4))
    one = (StudentFacts("Student 1", 1.0, 3600.0, 0.8, fatigue=Fatigue(0.2, 180.0)), *others)
    facts = _facts(students=one)
    assert rules.tired(one[0]) and not rules.class_tired(facts)
    assert any(r.scope == "Student 1" and r.kind == "study" for r in rules.recommendations(facts))
    assert not any(r.scope == "class" and r.kind == "study" for r in rules.recommendations(facts))
    two = (StudentFacts("Student 1", 1.0, 3600.0, 0.8, fatigue=TIRED),
           StudentFacts("Student 2", 1.0, 3600.0, 0.8, fatigue=TIRED), *others[1:])  # fmt: skip
    assert rules.class_tired(_facts(students=two))


# -- rules on real analysed clips -------------------------------------------------------------------


@pytest.fixture(scope="module")
def hamilton_facts(tmp_path_factory, models) -> LectureFacts:
    from core.pipeline import analyze
    from core.settings import Settings
    from core.store import Store
    from tests.conftest import fixture

    store = Store(tmp_path_factory.mktemp("report") / "h.duckdb")
    result = analyze(fixture("short_hamilton_clip.mp4"), store, Settings(), models=models)
    return build_facts(store, result.lecture_id)


@pytest.mark.parametrize("clip", ["real_facts", "hamilton_facts"])
def test_real_short_clips_get_no_break_and_no_repeats(clip, request):
    facts = request.getfixturevalue(clip)
    assert facts.duration_s < 30
    recs = rules.recommendations(facts)
    assert not any(r.kind == "break" for r in recs)
    text = rules.report_text(facts)
    assert "break" not in text.lower()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 3 and not s.startswith("#")]
    assert len(sentences) == len(set(sentences)), [s for s in sentences if sentences.count(s) > 1]
    assert check(text, facts).ok, check(text, facts).problems
    # Per-student points only for students seen long enough to say something.
    for r in recs:
        if r.scope != "class":
            s = next(x for x in facts.students if x.name == r.scope)
            assert s.seconds_present >= rules.MIN_STUDENT_S and r.scope in r.advice


def test_a_real_look_down_is_not_class_tiredness(real_facts, hamilton_facts):
    """The real clip's student keeps her eyes shut for 5 s: hers, and never the class's in a group."""
    shut = real_facts.students[0]
    group = dataclasses.replace(hamilton_facts, students=(shut, *hamilton_facts.students))
    assert not rules.class_tired(group)
    assert not any(r.kind == "study" and r.scope == "class" for r in rules.recommendations(group))
    assert "Tiredness is possible across the room" not in rules.report_text(group)


# -- grounding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "kind", "token"),
    [
        ("Student 1's attention fell to 0.37 at 0:00–0:06.", "number", "0.37"),
        ("Attention dropped for 42 minutes.", "number", "42"),
        ("A break around 7:30 would help.", "number", "7:30"),
        ("Maria should sit closer to the front.", "name", "Maria"),
        ("Give extra support to Student 4 after the break.", "name", "Student 4"),
        ("Ask Tom Baker to summarise the last part.", "name", "Tom"),
        ("Around eleven students looked away.", "number", "eleven"),
    ],
)
def test_checker_catches_planted_errors(real_facts, sentence, kind, token):
    text = rules.report_text(real_facts) + "\n\n" + sentence
    g = check(text, real_facts)
    assert not g.ok
    assert any(p.kind == kind and p.token == token for p in g.problems), g.problems
    repaired, removed = repair(text, real_facts)
    assert sentence not in repaired and removed and check(repaired, real_facts).ok
    assert repaired.startswith(rules.report_text(real_facts).strip()[:200])


def test_checker_accepts_grounded_wording(real_facts):
    a = real_facts.engagement
    text = f"Student 1 kept a mean engagement of {a:.2f} ({round(a * 100)}%). Encourage the class to keep going."
    assert check(text, real_facts).ok, check(text, real_facts).problems


def test_checker_knows_other_roster_names(real_facts):
    assert not check("Ada did well.", real_facts, other_names=("Ada Lovelace", "Ada")).ok


def test_emotion_word_fails_in_attention_only(real_facts):
    facts = dataclasses.replace(real_facts, attention_only=True, emotions=())
    g = check("The class looked happy at the end.", facts)
    assert [p.kind for p in g.problems] == ["emotion"]


# -- the edited input string --------------------------------------------------------------------------


def test_edited_input_string_changes_the_facts(real_facts):
    edited = "Ada: attention=0.40; sad=0.70 (3.00min); happy=0.60 (1.00min) | Student 2: attention=0.90"
    facts = apply_input(real_facts, edited)
    assert facts.names == ("Ada", "Student 2")
    assert facts.emotion("sad").share == 0.75 and facts.students[0].emotion("sad").minutes == 3.0
    text = rules.report_text(facts)
    assert "## For Ada" in text and check(text, facts).ok
    assert apply_input(real_facts, input_string(real_facts)) is real_facts


@pytest.mark.parametrize(
    "bad", ["", "Ada happy=0.8", "Ada: happy=0.8", "Ada: joy=0.5 (1.00min)", "Ada: happy=3 (1min)"]
)
def test_bad_input_string_is_explained(real_facts, bad):
    with pytest.raises(BadReportInput):
        apply_input(real_facts, bad)


# -- the local writer on a tiny model: same code path as the real one ---------------------------------


def test_local_writer_tiny_model_offline_checked(real_facts, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pieces: list[str] = []
    steps: list[float] = []
    config = ReportConfig(local_model=str(tiny_model_dir), budget_s=60)
    report = generate(real_facts, "local", config=config, on_text=pieces.append, progress=lambda f, m: steps.append(f))
    assert report.writer == "local" and report.model == tiny_model_dir.name
    assert len(pieces) > 3 and report.tokens > 0 and report.first_token_s is not None
    assert steps[-1] == 1.0 and steps == sorted(steps)
    # Whatever the random model wrote, the stored text passes the check, and every recommendation
    # is the rules writer's (the model words, it does not decide).
    assert check(report.text, real_facts).ok
    for r in rules.recommendations(real_facts):
        assert r.advice in report.text and r.evidence in report.text
    assert rules.summary(real_facts) in report.text


def test_local_writer_time_budget_falls_back_to_rules(real_facts, tiny_model_dir):
    config = ReportConfig(local_model=str(tiny_model_dir), budget_s=0)
    report = generate(real_facts, "local", config=config)
    assert report.tokens == 0 and any("time budget" in n for n in report.notes)
    assert check(report.text, real_facts).ok


class Scripted:
    """A stand-in wording model that answers with fixed text (to test what the writer does with it)."""

    title = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def complete(self, messages, *, max_new_tokens, max_time_s, on_text):
        text = self.answers.pop(0) if self.answers else ""
        if on_text:
            on_text(text)
        return text, len(text.split()), 0.01


def test_a_planted_low_beside_a_high_figure_is_caught(real_facts):
    """The real clip's class engagement is high: "attention was low" is refused in plain words."""
    from core.report.writers import ModelWriter

    assert real_facts.engagement >= 0.7
    g = check("Overall, attention was low in this lecture.", real_facts)
    assert [p.kind for p in g.problems] == ["claim"] and g.problems[0].token == "low"
    assert f"engagement was {real_facts.engagement:.0%}" in g.problems[0].describe()
    report = ModelWriter("local", Scripted(["Overall, attention was low in this lecture. Keep going."])).write(
        real_facts
    )
    assert "attention was low" not in report.text and report.replaced == 1
    assert any("left out because it said “low”" in n for n in report.notes), report.notes
    assert check(report.text, real_facts).ok
    good = ModelWriter("local", Scripted(["Engagement was high and rose in the second half. Keep it up."]))
    assert "Engagement was high and rose" in good.write(real_facts).text


@pytest.mark.parametrize(
    ("sentence", "token"),
    [
        ("Attention fell from the first half to the second.", "fell"),  # it rose
        ("Engagement was not high.", "high"),
        ("Student 1 was the least engaged student.", None),  # one student: nothing to compare
        ("Engagement dipped at 0:01–0:05.", None),  # a real low stretch
        ("Engagement rose over the lecture.", None),
    ],
)
def test_direction_words_are_checked(real_facts, sentence, token):
    problems = check(sentence, real_facts).problems
    assert [p.token for p in problems if p.kind == "claim"] == ([token] if token else [])


def test_most_and_least_name_the_right_student(hamilton_facts):
    known = [s for s in hamilton_facts.students if s.engagement is not None]
    best = max(known, key=lambda s: s.engagement)
    worst = min(known, key=lambda s: s.engagement)
    assert check(f"{best.name} was the most engaged.", hamilton_facts).ok
    assert not check(f"{worst.name} was the most engaged.", hamilton_facts).ok
    assert check(f"{worst.name} was the least engaged.", hamilton_facts).ok


def test_unavailable_writers_say_why(real_facts, tmp_path):
    from core.report import WriterUnavailable

    with pytest.raises(WriterUnavailable, match="make setup"):
        generate(real_facts, "local", config=ReportConfig(local_model=str(tmp_path)))
    with pytest.raises(WriterUnavailable, match="CLASSLENS_OPENAI_URL"):
        generate(real_facts, "openai", config=ReportConfig())


# -- storage and CLI ----------------------------------------------------------------------------------


def test_reports_are_stored_and_reopened(analysed_db):
    store, result = analysed_db
    before = len(list_reports(store, result.lecture_id))
    save_report(store, result.lecture_id, "rules", None, "text one")
    save_report(store, result.lecture_id, "local", "tiny", "text two")
    df = list_reports(store, result.lecture_id)
    assert len(df) == before + 2 and df["text"].iloc[0] == "text two" and df["model"].iloc[0] == "tiny"


def test_cli_report(analysed_db, tmp_path):
    store, result = analysed_db
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "report", "--db", str(store.path), "--lecture", str(result.lecture_id),
         "--writer", "rules", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Lecture report: WolfgangLanger_Pexels.mp4")
    assert out.read_text() == proc.stdout.rstrip("\n") + "\n" or out.read_text().strip() == proc.stdout.strip()
    assert list_reports(store, result.lecture_id)["writer"].iloc[0] == "rules"
    bad = subprocess.run(
        [sys.executable, "-m", "core", "report", "--db", str(store.path), "--lecture", "999", "--writer", "rules"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: There is no lecture 999")


def test_openai_writer_streams_from_a_compatible_endpoint(real_facts):
    """A stub OpenAI-compatible server on localhost answers with server-sent events."""
    import http.server
    import threading

    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Give the class ", "a short break. ", "Maria should rest."]:
                chunk = {"choices": [{"delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = ReportConfig(openai_url=f"http://127.0.0.1:{server.server_port}/v1", openai_model="stub")
        report = generate(real_facts, "openai", config=config)
    finally:
        server.shutdown()
    assert seen and seen[0]["model"] == "stub" and seen[0]["stream"] is True
    assert "Maria" not in report.text and "Give the class" not in report.text
    assert any(p.token == "Maria" for p in report.removed) and report.notes
    assert any("it named someone who is not a student of this lecture" in n for n in report.notes)
    assert check(report.text, real_facts, allowed_names=(report.model,)).ok
