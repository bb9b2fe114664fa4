"""Every figure ClassLens shows, defined once (dashboard, students page, exports, report facts and
the report input string all call this module; nothing recomputes a figure elsewhere).

Vocabulary (the issue-15 schema): a lecture is sampled at `sample_fps` moments per second; it has
`frames_sampled` sampled moments in all. An observation is one student at one sampled moment.
Rows written before schema v4 have no `present` column (or NULL there): they count as present,
since old rows were all faces seen.

Figures:
    presence: the share of the lecture's sampled moments at which a student was present,
        0-1 (present rows / `sampled_moments`). Class presence: the mean of the students'.
    engagement: the mean attention score over the moments a student is present and attention
        could be judged (attention not NULL), 0-1; None when no such moment. "Not visible" is its
        own state, never 0. Class engagement: the mean over every judged moment of every student.
    low-engagement period: a run of consecutive time bins whose engagement is below
        `LOW_ENGAGEMENT` (bins without a judged moment end a run).
    high-engagement period: the same with engagement at or above `HIGH_ENGAGEMENT`.
    eye closure: eyes count as closed when `eyes_open` < `EYES_CLOSED_BELOW`; closed share is
        over the present moments with eyes measured; the longest closure is the longest run of
        consecutive closed moments (first to last plus one sampling interval), seconds.
    emotion share: the share of a student's moments with an emotion reading (face visible) in
        which that emotion was the top one; emotion minutes: those moments x the sampling interval.
        Class emotion shares are over every reading of every student (no summed minutes).
    happiness, anxiety: mean p(happy), p(fear) over every emotion reading; confidence: mean
        probability of each reading's top emotion (it describes the model, not the student).
    positive-emotion index: p(happy) - p(angry + disgust + fear + sad) per reading, averaged;
        in [-1, 1], neutral and surprise count as neither.
    time bins: one policy for charts and reports, `bin_seconds`.
    body state (per student, over present moments): face visible share = moments with the face
        visible / present moments; head down share = moments with the head down / present moments
        whose head state is known (None when never known); hand raised moments = present moments
        with a hand raised; usual posture = the most frequent known posture (None when never
        known). NULL body state (rows before schema v4, or no shoulders seen) is unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.faces import EMOTIONS
from core.store import Store

# Attention thresholds (attention in [0, 1]). The scorer (core/attention.py) keeps its own copy
# of the eyes-closed threshold until the perception rewrite imports this one.
LOW_ENGAGEMENT = 0.5
HIGH_ENGAGEMENT = 0.85
EYES_CLOSED_BELOW = 0.3
LONG_CLOSURE_S = 1.5
POSITIVE: tuple[str, ...] = ("happy",)
NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
ANXIETY: tuple[str, ...] = ("fear",)
BIN_CHOICES_S: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800)
MAX_BINS = 60
BAND_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0 + 1e-9)
BAND_LABELS: tuple[str, ...] = ("0–20%", "20–40%", "40–60%", "60–80%", "80–100%")

DEFINITIONS: dict[str, str] = {
    "students": "Distinct students found in the lecture.",
    "presence": "Presence = the share of the lecture's sampled moments at which the student was in view.",
    "engagement": "Engagement = the mean attention score (head towards the class front, eyes open, no long "
    "eye closure) over the moments the student was in view and attention could be judged. Moments when "
    "the student was not visible are left out, not counted as 0.",
    "happiness": "Mean probability of 'happy' over every face reading.",
    "confidence": "How sure the emotion model is of its reading: the mean probability of each reading's "
    "top emotion. It describes the model, not the student.",
    "anxiety": "Mean probability of 'fear' (FER-2013 has no anxiety class; fear is the closest).",
    "positive_index": "Positive-emotion index = p(happy) − p(angry + disgust + fear + sad), averaged; "
    "from −1 (all negative) to +1 (all happy). Neutral and surprise count as neither.",
    "bands": "Students grouped by their engagement over the lecture (steps of 20%).",
    "low": f"A low-engagement period is a run of time bins with engagement below {LOW_ENGAGEMENT:.0%}.",
    "face_visible": "Share of the moments in view at which the student's face was visible.",
    "head_down": "Share of the moments in view (head state known) with the head down: writing or reading "
    "while most of the class writes is not counted against engagement.",
    "hand_raised": "Moments in view with a hand raised (a wrist above the shoulder, beside or above the head).",
    "posture": "The student's most frequent posture: upright, leaning or slumped (from shoulders and head).",
}


# -- moments, bins ---------------------------------------------------------------------------------
def present_mask(obs: pd.DataFrame) -> np.ndarray:
    """Per row: the student was present (`present` true or NULL; no column = all present)."""
    if "present" not in obs:
        return np.ones(len(obs), dtype=bool)
    return obs["present"].astype("boolean").fillna(True).to_numpy(dtype=bool)


def judged_mask(obs: pd.DataFrame) -> np.ndarray:
    """Per row: present and attention judged (not NULL): the moments engagement averages over."""
    att = obs["attention"].to_numpy(dtype=float, na_value=np.nan) if len(obs) else np.zeros(0)
    return present_mask(obs) & np.isfinite(att)


def sampled_moments(frames_sampled: int | None, duration_s: float, sample_fps: float) -> int:
    """The lecture's sampled moments: `frames_sampled`, else duration x rate (at least 1)."""
    if frames_sampled and frames_sampled > 0:
        return int(frames_sampled)
    return max(1, math.ceil(duration_s * sample_fps - 1e-9))


def bin_seconds(duration_s: float, sample_fps: float, max_bins: int = MAX_BINS) -> float:
    """Time-bin width, seconds: the smallest of `BIN_CHOICES_S` giving at most `max_bins` bins and
    at least one sampled moment per bin."""
    floor = 1.0 / max(sample_fps, 1e-6)
    for b in BIN_CHOICES_S:
        if b >= floor and duration_s / b <= max_bins:
            return float(b)
    return float(math.ceil(duration_s / max_bins / 60) * 60)


def bin_index(t: np.ndarray | pd.Series, bin_s: float, n_bins: int | None = None) -> np.ndarray:
    """Bin number of each time (seconds); the last partial bin is clipped into `n_bins - 1`."""
    b = (np.asarray(t, dtype=float) // bin_s).astype(int)
    return np.minimum(b, n_bins - 1) if n_bins else b


def bin_count(duration_s: float, bin_s: float) -> int:
    return max(1, math.ceil(duration_s / bin_s - 1e-9))


def expected_per_bin(duration_s: float, sample_fps: float, bin_s: float) -> np.ndarray:
    """Sampled moments in each bin (the last one may be partial)."""
    starts = np.arange(bin_count(duration_s, bin_s)) * bin_s
    return np.maximum(1.0, np.ceil(np.minimum(bin_s, duration_s - starts) * sample_fps - 1e-9))


# -- per-student figures ---------------------------------------------------------------------------
def presence(obs: pd.DataFrame, moments: int) -> pd.Series:
    """Per student_id: present moments / the lecture's sampled moments, 0-1."""
    if obs.empty:
        return pd.Series(dtype=float)
    n = pd.Series(present_mask(obs), index=obs.index).groupby(obs["student_id"]).sum()
    return (n / max(1, moments)).clip(0, 1).astype(float)


def engagement(obs: pd.DataFrame) -> pd.Series:
    """Per student_id: mean attention over present, judged moments (NaN when none)."""
    if obs.empty:
        return pd.Series(dtype=float)
    att = obs["attention"].astype(float).where(judged_mask(obs))
    return att.groupby(obs["student_id"]).mean()


def mean_engagement(obs: pd.DataFrame) -> float | None:
    """Mean attention over every present, judged moment of `obs` (None when none)."""
    if obs.empty:
        return None
    ok = judged_mask(obs)
    return float(obs["attention"].astype(float)[ok].mean()) if ok.any() else None


def halves(obs: pd.DataFrame, duration_s: float) -> tuple[float | None, float | None]:
    """Engagement (as `mean_engagement`) in the first and second half of the lecture."""
    if obs.empty:
        return None, None
    first = obs["t"].to_numpy(dtype=float) < duration_s / 2
    return mean_engagement(obs[first]), mean_engagement(obs[~first])


@dataclass(frozen=True)
class Period:
    """A stretch of the lecture. start_s, end_s: seconds; engagement: mean of its bins; before:
    mean of up to three bins just before it (None at the start)."""

    start_s: float
    end_s: float
    engagement: float
    before: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def periods(bins: pd.Series, bin_s: float, duration_s: float, *, low: bool = True) -> tuple[Period, ...]:
    """Low (engagement < `LOW_ENGAGEMENT`) or high (>= `HIGH_ENGAGEMENT`) periods of a per-bin
    engagement series (index = bin number; NaN = not visible, which ends a run)."""
    values = bins.dropna().sort_index()
    hit = values < LOW_ENGAGEMENT if low else values >= HIGH_ENGAGEMENT
    out: list[Period] = []
    run: list[int] = []

    def close() -> None:
        if run:
            prior = values[(values.index < run[0]) & (values.index >= run[0] - 3)]
            out.append(
                Period(
                    start_s=float(run[0] * bin_s),
                    end_s=float(min(duration_s, (run[-1] + 1) * bin_s)) if duration_s else float((run[-1] + 1) * bin_s),
                    engagement=float(values.loc[run].mean()),
                    before=float(prior.mean()) if len(prior) else None,
                )
            )

    for b, h in hit.items():
        if h and run and b == run[-1] + 1:
            run.append(int(b))
            continue
        close()
        run = [int(b)] if h else []
    close()
    return tuple(out)


def eye_closure(obs: pd.DataFrame, sample_fps: float) -> pd.DataFrame:
    """Per student_id: closed_share (of present moments with eyes measured) and longest_s (the
    longest run of consecutive closed moments, seconds). Students without eye readings are absent."""
    cols = ["closed_share", "longest_s"]
    if obs.empty or "eyes_open" not in obs:
        return pd.DataFrame(columns=cols, dtype=float)
    eyes = obs[present_mask(obs)].dropna(subset=["eyes_open"])
    if eyes.empty:
        return pd.DataFrame(columns=cols, dtype=float)
    step = 1.0 / max(sample_fps, 1e-6)
    rows = {}
    for sid, g in eyes.sort_values("t").groupby("student_id"):
        t = g["t"].to_numpy(dtype=float)
        closed = g["eyes_open"].to_numpy(dtype=float) < EYES_CLOSED_BELOW
        longest, start = 0.0, None
        for i in range(len(t)):
            if closed[i] and (start is None or t[i] - t[i - 1] > 1.5 * step):
                start = i
            if not closed[i]:
                start = None
            if start is not None:
                longest = max(longest, t[i] - t[start] + step)
        rows[int(sid)] = (float(closed.mean()), float(longest))
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def body_state(obs: pd.DataFrame) -> pd.DataFrame:
    """Per student (index student_id): face_visible_share, head_down_share, hand_raised_moments and
    posture over present moments (see the module docstring)."""
    cols = ["face_visible_share", "head_down_share", "hand_raised_moments", "posture"]
    if not len(obs):
        return pd.DataFrame(columns=cols)
    here = obs[present_mask(obs)]

    def flag(name: str, default: bool | None) -> pd.Series:
        if name not in here:
            return pd.Series(default, index=here.index, dtype="boolean")
        return here[name].astype("boolean")

    face = flag("face_visible", True).fillna(True)
    down = flag("head_down", None)
    raised = flag("hand_raised", None).fillna(False)
    posture = here["posture"] if "posture" in here else pd.Series(None, index=here.index, dtype="object")
    g = here["student_id"]
    out = pd.DataFrame(
        {
            "face_visible_share": face.astype(float).groupby(g).mean(),
            "head_down_share": down.astype("Float64").groupby(g).mean().astype(float),
            "hand_raised_moments": raised.astype(int).groupby(g).sum(),
        }
    )
    usual = posture.dropna().groupby(g[posture.notna()]).agg(lambda v: v.value_counts().idxmax())
    out["posture"] = usual.reindex(out.index)
    return out


def emotion_readings(obs: pd.DataFrame) -> pd.DataFrame:
    """The rows with an emotion reading (present, face visible, dominant emotion set)."""
    if obs.empty:
        return obs
    return obs[present_mask(obs) & obs["dominant_emotion"].notna().to_numpy()]


def emotion_table(obs: pd.DataFrame, sample_fps: float) -> pd.DataFrame:
    """Per student and dominant emotion: readings, share of the student's readings, minutes,
    mean confidence while dominant. Long format, most minutes first within a student."""
    cols = ["student_id", "emotion", "readings", "share", "minutes", "mean_confidence"]
    emo = emotion_readings(obs)
    if emo.empty:
        return pd.DataFrame(columns=cols)
    g = emo.groupby(["student_id", "dominant_emotion"])
    out = g.agg(readings=("t", "size"), mean_confidence=("dominant_conf", "mean")).reset_index()
    out = out.rename(columns={"dominant_emotion": "emotion"})
    out["share"] = out["readings"] / out.groupby("student_id")["readings"].transform("sum")
    out["minutes"] = out["readings"] / sample_fps / 60.0
    out = out.sort_values(["student_id", "minutes", "emotion"], ascending=[True, False, True])
    return out[cols].reset_index(drop=True)


def class_emotion_shares(obs: pd.DataFrame) -> pd.DataFrame:
    """Per dominant emotion: its share of every reading of the class (emotion, share), biggest first."""
    emo = emotion_readings(obs)
    if emo.empty:
        return pd.DataFrame(columns=["emotion", "share"])
    s = emo["dominant_emotion"].astype(str).value_counts(normalize=True)
    out = pd.DataFrame({"emotion": s.index, "share": s.to_numpy(dtype=float)})
    return out.sort_values(["share", "emotion"], ascending=[False, True]).reset_index(drop=True)


def positive_values(obs: pd.DataFrame) -> pd.Series:
    """Positive-emotion index of each reading (rows with probabilities): p(happy) − p(negative)."""
    emo = emotion_readings(obs).dropna(subset=["p_happy"]) if not obs.empty else obs
    if emo.empty:
        return pd.Series(dtype=float)
    pos = emo[[f"p_{e}" for e in POSITIVE]].astype(float).sum(axis=1)
    neg = emo[[f"p_{e}" for e in NEGATIVE]].astype(float).sum(axis=1)
    return pos - neg


def mean_probability(obs: pd.DataFrame, emotions: tuple[str, ...]) -> float | None:
    """Mean summed probability of `emotions` over every reading (None without readings)."""
    emo = emotion_readings(obs).dropna(subset=["p_happy"]) if not obs.empty else obs
    if emo.empty:
        return None
    return float(emo[[f"p_{e}" for e in emotions]].astype(float).sum(axis=1).mean())


def performance_bands(values: pd.Series) -> pd.DataFrame:
    """Number of students in each 20% engagement band (all five bands, zeros included)."""
    cats = pd.cut(values.dropna().astype(float), bins=list(BAND_EDGES), labels=list(BAND_LABELS), right=False)
    counts = cats.value_counts().reindex(list(BAND_LABELS), fill_value=0)
    return pd.DataFrame({"band": list(BAND_LABELS), "students": counts.to_numpy().astype(int)})


# -- per bin ---------------------------------------------------------------------------------------
def per_student_bins(
    obs: pd.DataFrame, students: pd.DataFrame, duration_s: float, sample_fps: float, bin_s: float
) -> pd.DataFrame:
    """Student x time bin: presence (present moments / sampled moments of the bin) and engagement
    (mean attention over judged moments; NaN = not visible). Columns: student_id, student, bin,
    t_start, present, expected, presence, engagement."""
    n_bins = bin_count(duration_s, bin_s)
    expected = expected_per_bin(duration_s, sample_fps, bin_s)
    grid = pd.MultiIndex.from_product([students["student_id"].tolist(), range(n_bins)], names=["student_id", "bin"])
    if obs.empty:
        sums = pd.DataFrame(index=grid, data={"present": 0, "engagement": np.nan})
    else:
        tmp = pd.DataFrame(
            {
                "student_id": obs["student_id"].to_numpy(),
                "bin": bin_index(obs["t"], bin_s, n_bins),
                "present": present_mask(obs),
                "att": obs["attention"].astype(float).where(judged_mask(obs)).to_numpy(),
            }
        )
        sums = tmp.groupby(["student_id", "bin"]).agg(present=("present", "sum"), engagement=("att", "mean"))
        sums = sums.reindex(grid).fillna({"present": 0})
    out = sums.reset_index()
    out["present"] = out["present"].astype(int)
    out["t_start"] = out["bin"] * bin_s
    out["expected"] = expected[out["bin"].to_numpy()]
    out["presence"] = np.clip(out["present"] / out["expected"], 0, 1)
    out["student"] = out["student_id"].map(students.set_index("student_id")["student"])
    return out[["student_id", "student", "bin", "t_start", "present", "expected", "presence", "engagement"]]


def class_bins(obs: pd.DataFrame, duration_s: float, bin_s: float) -> pd.Series:
    """Per bin (index): class engagement over every judged moment in it (NaN = nobody visible)."""
    n_bins = bin_count(duration_s, bin_s)
    if obs.empty:
        return pd.Series(np.nan, index=range(n_bins))
    att = obs["attention"].astype(float).where(judged_mask(obs))
    return att.groupby(bin_index(obs["t"], bin_s, n_bins)).mean().reindex(range(n_bins))


def class_timeline(per: pd.DataFrame, class_per_bin: pd.Series) -> pd.DataFrame:
    """Per bin: class engagement (`class_bins`) with the spread of the visible students' bins."""
    cols = ["bin", "t_start", "mean", "p25", "p75", "min", "max", "students"]
    if per.empty:
        return pd.DataFrame(columns=cols)
    g = per.dropna(subset=["engagement"]).groupby("bin")["engagement"]
    out = pd.DataFrame({"bin": sorted(per["bin"].unique())}).set_index("bin")
    out["t_start"] = per.drop_duplicates("bin").set_index("bin")["t_start"]
    out["mean"] = class_per_bin.reindex(out.index)
    out["p25"], out["p75"] = g.quantile(0.25), g.quantile(0.75)
    out["min"], out["max"], out["students"] = g.min(), g.max(), g.size()
    out["students"] = out["students"].fillna(0).astype(int)
    return out.reset_index()[cols]


def emotions_over_time(obs: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Per bin, the share of readings whose dominant emotion is each of the 7 (long: bin, t_start,
    emotion, share); bins without a reading are left out (no values are drawn across them)."""
    emo = emotion_readings(obs)
    if emo.empty:
        return pd.DataFrame(columns=["bin", "t_start", "emotion", "share"])
    counts = pd.crosstab(bin_index(emo["t"], bin_s), emo["dominant_emotion"].astype(str).to_numpy())
    counts = counts.reindex(columns=list(EMOTIONS), fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    shares.index.name = "bin"
    long = shares.reset_index().melt(id_vars="bin", var_name="emotion", value_name="share")
    long["t_start"] = long["bin"] * bin_s
    return long[["bin", "t_start", "emotion", "share"]].sort_values(["bin", "emotion"]).reset_index(drop=True)


def positive_index_bins(obs: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Per bin with readings: the mean positive-emotion index (bin, t_start, index)."""
    values = positive_values(obs)
    if values.empty:
        return pd.DataFrame(columns=["bin", "t_start", "index"])
    df = pd.DataFrame({"bin": bin_index(obs.loc[values.index, "t"], bin_s), "index": values.to_numpy()})
    out = df.groupby("bin", as_index=False)["index"].mean()
    out["t_start"] = out["bin"] * bin_s
    return out[["bin", "t_start", "index"]]


# students.csv / table column suffix, emotion_table column, value for a student with readings
# but never this emotion (0 share and minutes; confidence unknown).
EMOTION_FIELDS: tuple[tuple[str, str, float | None], ...] = (
    ("share", "share", 0.0),
    ("minutes", "minutes", 0.0),
    ("confidence", "mean_confidence", None),
)


# -- one lecture -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LectureMetrics:
    """Every figure of one lecture, computed once.

    Attributes:
        duration_s: lecture length (a live lecture without one: its last moment + one interval).
        moments: the lecture's sampled moments (the denominator of presence).
        show_emotions: emotions were measured and may be shown (not attention-only).
        attention_measured: some moment has an attention score.
        students: one row per student (label order): student_id, student, first_t, present,
            minutes_present, presence, engagement, first_half, second_half, closed_share,
            longest_closure_s, and per emotion `<e>_share`, `<e>_minutes`, `<e>_confidence`
            (NaN when emotions are not shown or the student had none).
        emotions: `emotion_table` (empty when emotions are not shown).
        per_student_bin: `per_student_bins`; class_bin: `class_bins`.
        obs: the observations (emotion columns blanked when emotions are not shown).
    """

    lecture_id: int
    file_name: str
    created_at: pd.Timestamp | None
    duration_s: float
    sample_fps: float
    moments: int
    bin_s: float
    show_emotions: bool
    attention_measured: bool
    students: pd.DataFrame
    emotions: pd.DataFrame
    per_student_bin: pd.DataFrame
    class_bin: pd.Series
    obs: pd.DataFrame

    @property
    def engagement(self) -> float | None:
        """Class engagement (see the module docstring)."""
        return mean_engagement(self.obs)

    @property
    def presence(self) -> float | None:
        """Class presence: mean of the students' presence."""
        return float(self.students["presence"].mean()) if len(self.students) else None

    def halves(self) -> tuple[float | None, float | None]:
        return halves(self.obs, self.duration_s)

    def low_periods(self, student_id: int | None = None) -> tuple[Period, ...]:
        """Low-engagement periods of the class (None) or one student."""
        return periods(self._bins(student_id), self.bin_s, self.duration_s, low=True)

    def high_periods(self, student_id: int | None = None) -> tuple[Period, ...]:
        return periods(self._bins(student_id), self.bin_s, self.duration_s, low=False)

    def _bins(self, student_id: int | None) -> pd.Series:
        if student_id is None:
            return self.class_bin
        per = self.per_student_bin
        return per[per["student_id"] == student_id].set_index("bin")["engagement"]

    def class_emotions(self) -> pd.DataFrame:
        return class_emotion_shares(self.obs) if self.show_emotions else pd.DataFrame(columns=["emotion", "share"])

    def class_eye_closure(self) -> tuple[float, float] | None:
        """(closed share over every eye reading of the class, longest closure of any student)."""
        eyes = eye_closure(self.obs, self.sample_fps)
        if eyes.empty:
            return None
        ok = self.obs[present_mask(self.obs)].dropna(subset=["eyes_open"])
        return float((ok["eyes_open"].astype(float) < EYES_CLOSED_BELOW).mean()), float(eyes["longest_s"].max())


def lecture_attention_only(settings_json: object) -> bool:
    """Whether a lecture was analysed without emotions (its stored settings)."""
    try:
        return bool(json.loads(str(settings_json)).get("attention_only", False))
    except (TypeError, ValueError, AttributeError):
        return False


def compute(
    lecture: pd.Series, obs: pd.DataFrame, students: pd.DataFrame, *, attention_only: bool = False
) -> LectureMetrics:
    """Every figure of one lecture from its `lectures` row, observations and students (label order).

    Args:
        attention_only: leave every emotion out (also implied by a lecture analysed that way).
    """
    fps = float(lecture["sample_fps"])
    duration = float(lecture["duration_s"]) if pd.notna(lecture["duration_s"]) and lecture["duration_s"] else 0.0
    if len(obs) and duration <= float(obs["t"].max()):  # a live lecture (no length) or a short header
        duration = float(obs["t"].max()) + 1 / fps
    duration = duration or 1 / fps
    frames = lecture.get("frames_sampled")
    moments = sampled_moments(int(frames) if pd.notna(frames) else 0, duration, fps)
    has_emotions = bool(len(obs) and obs["dominant_emotion"].notna().any())
    show = has_emotions and not attention_only and not lecture_attention_only(lecture.get("settings"))
    if not show and len(obs):
        blank = {c: np.nan for c in obs.columns if c.startswith("p_") or c == "dominant_conf"}
        obs = obs.assign(dominant_emotion=None, **blank)
    bin_s = bin_seconds(duration, fps)
    studs = students[["student_id", "student", "first_t"]].copy()
    ids = studs["student_id"]
    present_n = pd.Series(present_mask(obs), index=obs.index).groupby(obs["student_id"]).sum() if len(obs) else None
    studs["present"] = (present_n.reindex(ids).fillna(0).astype(int).to_numpy()) if present_n is not None else 0
    studs["minutes_present"] = studs["present"] / fps / 60.0
    studs["presence"] = presence(obs, moments).reindex(ids).fillna(0.0).to_numpy()
    studs["engagement"] = engagement(obs).reindex(ids).to_numpy(dtype=float)
    firsts, seconds = [], []
    for sid in ids:
        a, b = halves(obs[obs["student_id"] == sid], duration)
        firsts.append(a)
        seconds.append(b)
    studs["first_half"] = pd.array(firsts, dtype="Float64").astype(float)
    studs["second_half"] = pd.array(seconds, dtype="Float64").astype(float)
    body = body_state(obs)
    for col in ("face_visible_share", "head_down_share", "hand_raised_moments", "posture"):
        studs[col] = body[col].reindex(ids).to_numpy() if len(body) else np.nan
    eyes = eye_closure(obs, fps)
    studs["closed_share"] = eyes["closed_share"].reindex(ids).to_numpy(dtype=float)
    studs["longest_closure_s"] = eyes["longest_s"].reindex(ids).to_numpy(dtype=float)
    emo = emotion_table(obs, fps) if show else pd.DataFrame(columns=["student_id", "emotion"])
    for e in EMOTIONS:
        sub = emo[emo["emotion"] == e].set_index("student_id") if show else None
        has = ids.isin(emo["student_id"]) if show else pd.Series(False, index=studs.index)
        for col, key, fill in EMOTION_FIELDS:
            if sub is None:
                studs[f"{e}_{col}"] = np.nan
                continue
            v = sub[key].reindex(ids).to_numpy(dtype=float)
            if fill is not None:  # a student with readings but never this emotion: 0, not unknown
                v = np.where(has.to_numpy() & ~np.isfinite(v), fill, v)
            studs[f"{e}_{col}"] = v
    per = per_student_bins(obs, studs, duration, fps, bin_s)
    return LectureMetrics(
        lecture_id=int(lecture["lecture_id"]),
        file_name=str(lecture["file_name"]),
        created_at=pd.Timestamp(lecture["created_at"]) if pd.notna(lecture.get("created_at")) else None,
        duration_s=duration,
        sample_fps=fps,
        moments=moments,
        bin_s=bin_s,
        show_emotions=show,
        attention_measured=bool(len(obs) and judged_mask(obs).any()),
        students=studs.reset_index(drop=True),
        emotions=emo,
        per_student_bin=per,
        class_bin=class_bins(obs, duration, bin_s),
        obs=obs,
    )


def students_export(m: LectureMetrics) -> pd.DataFrame:
    """students.csv: one row per student with `presence` and `engagement` (0-1), moments and minutes present,
    body state (face visible and head down shares, hand raised moments, usual posture), eye closure
    and per emotion share/minutes/confidence (empty when emotions were not measured or are hidden),
    then engagement per minute `engagement_minute_1..N` (empty = not visible)."""
    s = m.students
    cols = ["student_id", "student", "presence", "engagement", "present", "minutes_present", "face_visible_share",
            "head_down_share", "hand_raised_moments", "posture", "closed_share", "longest_closure_s"]  # fmt: skip
    out = s[cols].rename(
        columns={
            "present": "moments_present",
            "closed_share": "eyes_closed_share",
            "longest_closure_s": "longest_eye_closure_s",
        }
    )
    emo_cols = [f"{e}_{k}" for e in EMOTIONS for k in ("share", "minutes", "confidence")]
    out = pd.concat([out, s[emo_cols]], axis=1)
    if len(m.obs) and len(s):
        n_min = bin_count(m.duration_s, 60.0)
        ok = judged_mask(m.obs)
        att = m.obs["attention"].astype(float).where(ok)
        per_min = att.groupby([m.obs["student_id"], bin_index(m.obs["t"], 60.0, n_min)]).mean().unstack()
        per_min = per_min.reindex(index=s["student_id"], columns=range(n_min))
        per_min.columns = [f"engagement_minute_{i + 1}" for i in range(n_min)]
        out = pd.concat([out.reset_index(drop=True), per_min.reset_index(drop=True)], axis=1)
    return out


def for_lecture(store: Store, lecture_id: int, *, attention_only: bool = False) -> LectureMetrics:
    """`compute` on one lecture of the store.

    Raises:
        LectureNotFound: no such lecture.
    """
    from core import queries

    lecture = queries.lecture_row(store, lecture_id)
    return compute(
        lecture,
        queries.observations(store, lecture_id),
        queries.students(store, lecture_id),
        attention_only=attention_only,
    )
