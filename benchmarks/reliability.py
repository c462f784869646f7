"""Reliability: bad inputs, kill -9 in the middle of long jobs, concurrent writers, prompt
injections. Everything goes through the real ``reasonrag`` command in subprocesses, as a
hostile tester would use it.

    python benchmarks/reliability.py [--kills 5] [--docs docs/benchmarks.md]

- bad inputs: each case is one command; it is handled cleanly when it ends without a
  traceback, either with a one-line ``error:`` naming what was wrong and exit code 2-4, or
  with exit 0 and a ``skipped`` warning for an input file that was passed over;
- kills: ``kill -9`` at a random moment of ``index``, ``index --update`` and ``eval run``;
  survived when the index (or run) is afterwards readable, holds either the old or the new
  state, and the same command then completes without recomputing what was done;
- concurrent writers: several ``index --update`` processes at once, plus searches while
  they write; every writer must succeed and every update be present at the end;
- injections: the guard's withheld share over the written suite of variants.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from reasonrag.eval.report import replace_marked_section
from reasonrag.eval.runner import PREDICTIONS, PredictionLog, machine_info
from reasonrag.progress import make_console

console = make_console(stderr=True)
DOCS_SECTION = "reliability"
DEAD_SERVER = "http://127.0.0.1:9/v1"
"""A loopback port nothing listens on: generation fails at once, after the input checks."""
Expect = Literal["error", "failure", "skip", "ok"]
"""``error``: bad input, exit 2-4 and a message; ``failure``: the work failed (a backend
down), exit 1 and a message; ``skip``: exit 0 with a warned skip; ``ok``: exit 0."""


# --- running the command ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int | None
    """None when the command ran past its time limit."""
    output: str
    seconds: float


def reasonrag(args: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> Result:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reasonrag.cli", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
        return Result(None, output, time.perf_counter() - started)
    return Result(done.returncode, done.stdout + done.stderr, time.perf_counter() - started)


def base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASONRAG_")}
    return env | {"REASONRAG_CACHE_DIR": str(root / "cache"), "PYTHONUNBUFFERED": "1"}


# --- the world the cases run in ---------------------------------------------------------------


def prose(i: int, words: int = 80) -> str:
    rng = random.Random(i)
    vocabulary = [
        "mill",
        "river",
        "bridge",
        "harbour",
        "engineer",
        "barley",
        "salt",
        "trade",
        "town",
        "valley",
        "stone",
    ]
    body = " ".join(rng.choice(vocabulary) for _ in range(words))
    return f"Document {i} tells of the town of Vell{i}. {body}."


def write_corpus(folder: Path, n: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"doc{i:04d}.md").write_text(f"# Vell{i}\n\n{prose(i)}\n")
    return folder


def make_world(root: Path, env: dict[str, str]) -> dict[str, Path]:
    """Files and folders the cases point at, including one valid index."""
    w = {"root": root}
    w["docs"] = write_corpus(root / "docs", 6)
    w["index"] = root / "index"
    built = reasonrag(["index", str(w["docs"]), "--out", str(w["index"])], env, root)
    if built.code != 0:
        raise SystemExit(f"could not build the base index:\n{built.output}")
    bad = root / "bad"
    bad.mkdir()
    files = {
        "binary.bin": b"\x00\x01\x02",
        "utf16.txt": "text in UTF-16".encode("utf-16"),
        "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
        "empty.md": b"",
        "spaces.txt": b"   \n\n  \t\n",
        "broken.pdf": b"%PDF-1.4\n this is not really a pdf",
        "surrogate.jsonl": b'{"id": "s1", "text": "bad \\ud800 text"}\n'
        b'{"id": "\\udfff", "text": "x"}\n',
        "malformed.jsonl": b'{not json\n[1, 2]\n{"id": [], "text": "x"}\n{"id": "t", "text": 5}\n'
        b'{"id": "u"}\n{"id": "v", "text": "ok", "title": 3}\n',
        "deep.jsonl": b"[" * 100_000 + b"\n",
        "entity.html": b"<html><title>T</title><p>bad &#xD800; entity and &#0; nul</p></html>",
        "noext": b"plain text without an extension",
        "huge-line.txt": b"word " * 400_000,  # 2 MB on one line
        "giant-token.txt": b"x" * 5_000_000,  # 5 MB without a space
    }
    for name, data in files.items():
        (bad / name).write_bytes(data)
    w["bad"] = bad
    w["afile"] = root / "afile.txt"
    w["afile"].write_text("a file, not a folder")
    w["foreign"] = root / "foreign"
    for name in ("gen-1", "gen-2024.backup", "gen-photos"):
        (w["foreign"] / name).mkdir(parents=True)
    (w["foreign"] / "gen-1" / "holiday.jpg").write_bytes(b"jpeg")
    w["configs"] = root / "configs"
    w["configs"].mkdir()
    for name, text in {
        "broken.toml": "[llm\nmodel = ",
        "unknown.toml": "[retrieval]\nfusoin = 'rrf'\n",
        "type.toml": "[agent]\nmax_steps = 'many'\n",
        "range.toml": "[chunk]\nmax_tokens = 20\noverlap_tokens = 40\n",
        "choice.toml": "[retrieval]\nrerank = 'magic'\n",
        "cross.toml": "[retrieval]\nrerank = 'cross-encoder'\n",
        "cross-missing.toml": "[retrieval]\nrerank = 'cross-encoder'\n"
        "cross_encoder_model = '/nowhere/model'\n",
        "dead.toml": f"[llm]\nbackend = 'openai'\nbase_url = '{DEAD_SERVER}'\nmax_retries = 0\n",
    }.items():
        (w["configs"] / name).write_text(text)
    w["data"] = root / "data"
    w["data"].mkdir()
    # A good line first: a file starting with "[" would be read as one JSON array.
    good = {"_id": "q1", "question": "Q?", "answer": "A", "supporting_facts": [],
            "context": [["T", ["A is here."]]]}  # fmt: skip
    (w["data"] / "deep.jsonl").write_text(json.dumps(good) + "\n" + "[" * 100_000 + "\n")
    (w["data"] / "garbage.jsonl").write_text("not json\n{}\n[]\n")
    (w["data"] / "array.json").write_text('[{"_id": "x", ')
    for name, damage in DAMAGE.items():
        w[f"damaged_{name}"] = w["root"] / "damaged" / name
        shutil.copytree(w["index"], w[f"damaged_{name}"])
        damage(w[f"damaged_{name}"])
    return w


def _generation(index: Path) -> Path:
    return index / json.loads((index / "manifest.json").read_text())["generation"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_manifest(**changes: object) -> Callable[[Path], None]:
    def edit(index: Path) -> None:
        manifest = json.loads((index / "manifest.json").read_text())
        manifest.update(changes)
        (index / "manifest.json").write_text(json.dumps(manifest))

    return edit


def _garbage_bm25(index: Path) -> None:
    for path in (_generation(index) / "bm25").iterdir():
        size = path.stat().st_size
        path.write_bytes((b"\xffgarbage" * (size // 8 + 1))[:size])


# --- bad inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    area: str
    name: str
    args: tuple[str, ...]
    """The command line; ``{name}`` fields are paths of the world (``{out}`` a fresh one)."""
    expect: Expect
    mentions: str = ""
    """Text the output must contain: the file, field or value at fault."""
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, world: dict[str, Path]) -> list[str]:
        fresh = world["root"] / "outs" / f"o{random.randrange(10**9)}"
        return [a.format(**world, out=fresh) for a in self.args]


SKIPPED_ALONE = (
    "binary.bin", "utf16.txt", "latin1.txt", "empty.md", "spaces.txt", "broken.pdf",
    "surrogate.jsonl", "malformed.jsonl", "deep.jsonl", "noext",
)  # fmt: skip
DAMAGE: dict[str, Callable[[Path], object]] = {
    "vectors": lambda i: _truncate(_generation(i) / "vectors.npy"),
    "faiss": lambda i: _truncate(_generation(i) / "dense.faiss"),
    "parquet": lambda i: _truncate(_generation(i) / "chunks.parquet"),
    "bm25": lambda i: _garbage_bm25(i),
    "outside": _edit_manifest(generation="../../etc"),
    "rows": _edit_manifest(n_chunks=999),
    "json": lambda i: (i / "manifest.json").write_text("{nope"),
    "format": _edit_manifest(format_version=1),
    "missing": lambda i: (_generation(i) / "chunks.parquet").unlink(),
}
HOTPOT = ("eval", "run", "--dataset", "hotpotqa", "--method", "closed", "--out", "{out}")
DEAD = ("-c", "{configs}/dead.toml")

# fmt: off
CASES = [
    Case("index", "path that does not exist", ("index", "/no/such/dir", "--out", "{out}"), "error", "/no/such/dir"),  # noqa: E501
    Case("index", "folder with nothing indexable", ("index", "{configs}", "--out", "{out}"), "error", "no indexable documents"),  # noqa: E501
    Case("index", "--out names a file", ("index", "{docs}", "--out", "{afile}"), "error", "is a file"),  # noqa: E501
    Case("index", "--out is a user's folder holding gen-* folders", ("index", "{docs}", "--out", "{foreign}"), "error", "not a reasonrag index"),  # noqa: E501
    Case("index", "--update into that folder", ("index", "{docs}", "--out", "{foreign}", "--update"), "error", "not a reasonrag index"),  # noqa: E501
    Case("index", "unknown --context", ("index", "{docs}", "--out", "{out}", "--context", "magic"), "error", "magic"),  # noqa: E501
    Case("index", "good and bad files together", ("index", "{bad}", "{docs}", "--out", "{out}"), "skip", "surrogate.jsonl:1"),  # noqa: E501
    Case("index", "HTML with surrogate and NUL entities", ("index", "{bad}/entity.html", "--out", "{out}"), "ok"),  # noqa: E501
    Case("index", "2 MB single-line file", ("index", "{bad}/huge-line.txt", "--out", "{out}"), "ok"),  # noqa: E501
    Case("index", "5 MB unbroken token", ("index", "{bad}/giant-token.txt", "--out", "{out}"), "ok"),  # noqa: E501
    *[Case("index", f"only {name}", ("index", f"{{bad}}/{name}", "--out", "{out}"), "error", name) for name in SKIPPED_ALONE],  # noqa: E501
    Case("config", "broken TOML", ("search", "{index}", "q", "-c", "{configs}/broken.toml"), "error", "broken.toml"),  # noqa: E501
    Case("config", "unknown field", ("search", "{index}", "q", "-c", "{configs}/unknown.toml"), "error", "fusoin"),  # noqa: E501
    Case("config", "wrong type", ("search", "{index}", "q", "-c", "{configs}/type.toml"), "error", "agent.max_steps"),  # noqa: E501
    Case("config", "overlap larger than the chunk", ("index", "{docs}", "--out", "{out}", "-c", "{configs}/range.toml"), "error", "overlap_tokens"),  # noqa: E501
    Case("config", "unknown choice", ("search", "{index}", "q", "-c", "{configs}/choice.toml"), "error", "retrieval.rerank"),  # noqa: E501
    Case("config", "config file missing", ("search", "{index}", "q", "-c", "/no/such.toml"), "error", "/no/such.toml"),  # noqa: E501
    Case("config", "bad environment value", ("search", "{index}", "q"), "error", "agent.top_k", {"REASONRAG_AGENT__TOP_K": "lots"}),  # noqa: E501
    Case("config", "bad --set", ("config", "show", "--set", "nonsense"), "error", "nonsense"),
    Case("config", "config init over an existing file", ("config", "init", "{afile}"), "error", "--force"),  # noqa: E501
    Case("search", "index that does not exist", ("search", "/no/index", "q"), "error", "/no/index"),
    Case("search", "k = 0", ("search", "{index}", "q", "-k", "0"), "error", "-k"),
    Case("search", "empty query", ("search", "{index}", "   "), "error", "query is empty"),
    Case("search", "cross-encoder without a model", ("search", "{index}", "q", "-c", "{configs}/cross.toml"), "error", "cross_encoder_model"),  # noqa: E501
    Case("search", "cross-encoder folder missing", ("search", "{index}", "q", "-c", "{configs}/cross-missing.toml"), "error", "/nowhere/model"),  # noqa: E501
    Case("search", "100,000-character query", ("search", "{index}", "mill " * 20_000, "--json"), "ok"),  # noqa: E501
    Case("search", "punctuation-only query", ("search", "{index}", "?!.,;", "--json"), "ok"),
    Case("search", "truncated vectors.npy", ("search", "{damaged_vectors}", "q"), "error", "vectors.npy"),  # noqa: E501
    Case("search", "truncated dense.faiss", ("search", "{damaged_faiss}", "q"), "error", "dense.faiss"),  # noqa: E501
    Case("search", "truncated chunks.parquet", ("search", "{damaged_parquet}", "q"), "error", "chunks.parquet"),  # noqa: E501
    Case("search", "garbage in bm25/", ("search", "{damaged_bm25}", "q"), "error", "bm25"),
    Case("search", "manifest generation outside the index", ("search", "{damaged_outside}", "q"), "error", "generation"),  # noqa: E501
    Case("search", "row counts disagree", ("search", "{damaged_rows}", "q"), "error", "999"),
    Case("search", "manifest not JSON", ("search", "{damaged_json}", "q"), "error", "manifest.json"),  # noqa: E501
    Case("search", "manifest of another format", ("search", "{damaged_format}", "q"), "error", "format"),  # noqa: E501
    Case("ask", "index that does not exist", ("ask", "/no/index", "Who?"), "error", "/no/index"),
    Case("ask", "unknown action", ("ask", "{index}", "Who?", "--actions", "search,browse"), "error", "agent.actions"),  # noqa: E501
    Case("ask", "empty question", ("ask", "{index}", " "), "error", "question is empty"),
    Case("ask", "max steps 0", ("ask", "{index}", "Who?", "--max-steps", "0"), "error", "--max-steps"),  # noqa: E501
    Case("ask", "unknown method", ("ask", "{index}", "Who?", "--method", "magic"), "error", "magic"),  # noqa: E501
    Case("ask", "damaged index", ("ask", "{damaged_vectors}", "Who?"), "error", "vectors.npy"),
    Case("ask", "backend unreachable", ("ask", "Who?", "--method", "closed", *DEAD), "failure", "127.0.0.1:9"),  # noqa: E501
    Case("remove", "unknown document id", ("remove", "{index}", "doc9999.md"), "error", "doc9999.md"),  # noqa: E501
    Case("remove", "index that does not exist", ("remove", "/no/index", "x"), "error", "/no/index"),
    Case("info", "index that does not exist", ("info", "/no/index"), "error", "/no/index"),
    Case("info", "damaged index", ("info", "{damaged_missing}"), "error", "chunks.parquet"),
    Case("eval", "unknown dataset", ("eval", "run", "--dataset", "trivia"), "error", "trivia"),
    Case("eval", "dataset file missing", (*HOTPOT, "--path", "/no/dev.jsonl"), "error", "/no/dev.jsonl"),  # noqa: E501
    Case("eval", "dataset without a path", ("eval", "run", "--dataset", "hotpotqa"), "error", "needs a path"),  # noqa: E501
    Case("eval", "100,000 '[' on one line", (*HOTPOT, "--path", "{data}/deep.jsonl", *DEAD), "ok", "deep.jsonl:2"),  # noqa: E501
    Case("eval", "a file of garbage lines", (*HOTPOT, "--path", "{data}/garbage.jsonl", *DEAD), "error", "no questions"),  # noqa: E501
    Case("eval", "a cut JSON array", (*HOTPOT, "--path", "{data}/array.json"), "error", "array.json"),  # noqa: E501
    Case("eval", "n = 0", ("eval", "run", "--dataset", "demo", "--n", "0"), "error", "--n"),
    Case("eval", "report of a folder that is no run", ("eval", "report", "{docs}"), "error", "run.json"),  # noqa: E501
    Case("eval", "compare of folders that are no runs", ("eval", "compare", "{docs}", "{docs}"), "error", "run.json"),  # noqa: E501
]
# fmt: on


@dataclass(frozen=True)
class Verdict:
    case: Case
    result: Result
    clean: bool
    why: str


def judge(case: Case, result: Result) -> Verdict:
    text = result.output
    if result.code is None:
        return Verdict(case, result, False, "did not finish in time")
    if "Traceback (most recent call last)" in text:
        return Verdict(case, result, False, "traceback")
    flat = " ".join(text.replace("│", " ").split())
    if case.mentions and case.mentions not in flat:
        return Verdict(case, result, False, f"output does not name {case.mentions!r}")
    if case.expect == "error" and not 2 <= result.code <= 4:
        return Verdict(case, result, False, f"exit {result.code}, expected a bad-input code")
    if case.expect == "error" and "error" not in flat.lower():
        return Verdict(case, result, False, "no error message")
    if case.expect == "failure" and result.code != 1:
        return Verdict(case, result, False, f"exit {result.code}, expected 1 (work failed)")
    if case.expect in ("skip", "ok") and result.code != 0:
        return Verdict(case, result, False, f"exit {result.code}")
    if case.expect == "skip" and "skipped" not in flat:
        return Verdict(case, result, False, "no skip warning")
    return Verdict(case, result, True, "")


def run_cases(w: dict[str, Path], env: dict[str, str]) -> list[Verdict]:
    verdicts = []
    for case in CASES:
        result = reasonrag(case.argv(w), env | case.env, w["root"], timeout=240)
        verdict = judge(case, result)
        mark = "[green]ok[/]" if verdict.clean else f"[red]NOT CLEAN[/] ({verdict.why})"
        console.print(f"{case.area:7} {case.name:55} {mark} {result.seconds:5.1f} s")
        verdicts.append(verdict)
    return verdicts


# --- kill -9 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillRound:
    job: str
    at_s: float
    survived: bool
    note: str


def _start(args: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reasonrag.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_at(args: Sequence[str], env: dict[str, str], cwd: Path, at: float) -> bool:
    """Run, kill -9 after ``at`` seconds; True when the kill landed before it finished."""
    process = _start(args, env, cwd)
    try:
        process.wait(timeout=at)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def _index_state(index: Path, env: dict[str, str], cwd: Path) -> tuple[bool, set[str]]:
    """(readable, document ids) of an index, read through the CLI."""
    result = reasonrag(["info", str(index), "--json"], env, cwd, timeout=120)
    if result.code != 0:
        return False, set()
    ids = {d["id"] for d in json.loads(result.output)["documents"]}
    search = reasonrag(["search", str(index), "mill river", "--json"], env, cwd, timeout=120)
    return search.code == 0, ids


def kill_index(root: Path, env: dict[str, str], kills: int, rng: random.Random) -> list[KillRound]:
    """Kill a build of a fresh index, and an update of an existing one, at random moments."""
    docs = write_corpus(root / "kill-docs", 400)
    extra = write_corpus(root / "kill-extra", 150, start=400)
    reference = reasonrag(["index", str(docs), "--out", str(root / "ref")], env, root)
    duration = reference.seconds
    rounds = []
    for job, paths, update in (("index", [docs], False), ("index --update", [extra], True)):
        for _ in range(kills):
            target = root / f"kill-{job.replace(' ', '')}-{rng.randrange(10**9)}"
            # A different cache per round: a warm cache would make the job too fast to kill.
            round_env = env | {"REASONRAG_CACHE_DIR": str(target) + "-cache"}
            if update:
                shutil.copytree(root / "ref", target)
            before = _index_state(target, round_env, root)[1] if update else set()
            args = ["index", *map(str, paths), "--out", str(target)]
            args += ["--update"] if update else []
            at = rng.uniform(0.2, 1.0) * duration
            landed = _kill_at(args, round_env, root, at)
            readable, ids = _index_state(target, round_env, root)
            new = {f"doc{i:04d}.md" for i in range(400, 550)}
            if update:
                atomic = readable and ids in (before, before | new)
            else:
                atomic = not (target / "manifest.json").exists() or readable
            rerun = reasonrag(args, round_env, root)
            finished = rerun.code == 0 and _index_state(target, round_env, root)[0]
            note = "" if landed else "finished before the kill"
            if not atomic:
                note = f"after the kill: readable={readable}, {len(ids)} documents"
            elif not finished:
                note = f"rerun failed: {rerun.output[-300:]}"
            rounds.append(KillRound(job, at, atomic and finished, note))
            outcome = "survived" if rounds[-1].survived else "LOST"
            console.print(f"kill {job:15} at {at:5.1f} s: {outcome} {note}")
    return rounds


def kill_eval(root: Path, env: dict[str, str], kills: int, rng: random.Random) -> list[KillRound]:
    """Kill ``eval run`` (single-pass RAG on the demo set, embedded model) at random moments;
    the predictions must stay readable, and the rerun must ask only the remaining questions."""
    n = 16
    args = ["eval", "run", "--dataset", "demo", "--method", "rag", "--n", str(n), "--batch", "4"]
    # No response cache, so a rerun must really resume; the shared cache keeps the index's
    # embeddings and model files warm after the first (warm-up) run.
    round_env = env | {"REASONRAG_LLM__CACHE": "false"}
    reasonrag([*args[:-4], "--n", "1", "--out", str(root / "eval-warm")], round_env, root, 1800)
    reference = reasonrag([*args, "--out", str(root / "eval-ref")], round_env, root, timeout=1800)
    duration = reference.seconds
    rounds = []
    for _ in range(kills):
        run_dir = root / f"eval-kill-{rng.randrange(10**9)}"
        at = rng.uniform(0.3, 1.0) * duration
        landed = _kill_at([*args, "--out", str(run_dir)], round_env, root, at)
        try:
            done = len(PredictionLog(run_dir / PREDICTIONS).read())
            readable = True
        except Exception as exc:  # any failure to read the log is a loss
            done, readable = 0, False
            console.print(f"[red]predictions unreadable: {exc}")
        rerun = reasonrag([*args, "--out", str(run_dir)], round_env, root, timeout=1800)
        rows = PredictionLog(run_dir / PREDICTIONS).read() if rerun.code == 0 else {}
        resumed = f"{n - done} questions answered now, {done} resumed" in " ".join(
            rerun.output.split()
        )
        survived = readable and rerun.code == 0 and len(rows) == n and resumed
        note = f"{done}/{n} saved at the kill" + ("" if landed else ", finished before it")
        rounds.append(KillRound("eval run", at, survived, note))
        console.print(
            f"kill eval run      at {at:5.1f} s: {'survived' if survived else 'LOST'} {note}"
        )
    return rounds


# --- concurrent writers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Concurrency:
    writers: int
    failed_writers: int
    missing_updates: int
    reads: int
    failed_reads: int


def concurrent_writers(root: Path, env: dict[str, str], writers: int = 6) -> Concurrency:
    target = root / "concurrent"
    shutil.copytree(root / "index", target)
    sources = [write_corpus(root / f"concurrent-src-{i}", 1, start=900 + i) for i in range(writers)]
    processes = [
        _start(["index", str(s), "--out", str(target), "--update"], env, root) for s in sources
    ]
    reads = failed_reads = 0
    while any(p.poll() is None for p in processes):
        result = reasonrag(["search", str(target), "mill", "--json"], env, root, timeout=120)
        reads += 1
        failed_reads += result.code != 0
    failed = sum(p.wait() != 0 for p in processes)
    _, ids = _index_state(target, env, root)
    missing = sum(f"doc{900 + i:04d}.md" not in ids for i in range(writers))
    return Concurrency(writers, failed, missing, reads, failed_reads)


# --- report -----------------------------------------------------------------------------------


def injection_share() -> tuple[int, int] | None:
    """(withheld, variants) from the injection benchmark's suite, when it is present."""
    try:
        from injection import withheld_counts
    except ImportError:
        return None
    counts: tuple[int, int] = withheld_counts()
    return counts


def report(
    verdicts: Sequence[Verdict],
    kills: Sequence[KillRound],
    concurrency: Concurrency,
    injections: tuple[int, int] | None,
    command: str,
    seconds: float,
) -> str:
    machine = machine_info()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"Command: `{command}` ({seconds / 60:.1f} min), {date}, {machine['processor']}, "
        f"{machine['cpus']} CPUs, Python {machine['python']}.",
        "",
        "| check | tried | handled cleanly |",
        "|---|---:|---:|",
    ]
    areas = sorted({v.case.area for v in verdicts})
    for area in areas:
        mine = [v for v in verdicts if v.case.area == area]
        lines.append(f"| bad input: `{area}` | {len(mine)} | {sum(v.clean for v in mine)} |")
    lines.append(
        f"| **bad inputs, all** | **{len(verdicts)}** | **{sum(v.clean for v in verdicts)}** |"
    )
    for job in sorted({k.job for k in kills}):
        rounds = [k for k in kills if k.job == job]
        survived = sum(k.survived for k in rounds)
        lines.append(f"| kill -9 during `{job}` | {len(rounds)} | {survived} |")
    c = concurrency
    lines.append(
        f"| concurrent `index --update` writers | {c.writers} | "
        f"{c.writers - c.failed_writers} succeeded, {c.missing_updates} updates missing |"
    )
    lines.append(f"| searches while they wrote | {c.reads} | {c.reads - c.failed_reads} |")
    if injections is not None:
        lines.append(f"| injection variants withheld by the guard | {injections[1]} | "
                     f"{injections[0]} |")  # fmt: skip
    misses = [v for v in verdicts if not v.clean]
    lost = [k for k in kills if not k.survived]
    lines.append("")
    if misses or lost:
        lines.append("Not clean:")
        lines += [f"- {v.case.area}: {v.case.name}: {v.why}" for v in misses]
        lines += [f"- kill during {k.job} at {k.at_s:.1f} s: {k.note}" for k in lost]
    else:
        lines.append("Every bad input was a clear error or a warned skip; every kill survived.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5, help="kill rounds per job")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=Path, help="write the table into this markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="reasonrag-reliability-"))
    env = base_env(root)
    try:
        world = make_world(root, env)
        verdicts = run_cases(world, env)
        kills = kill_index(root, env, args.kills, rng) + kill_eval(root, env, args.kills, rng)
        concurrency = concurrent_writers(root, env)
        console.print(concurrency)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    command = "python benchmarks/reliability.py" + " ".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    table = report(
        verdicts, kills, concurrency, injection_share(), command, time.perf_counter() - started
    )
    print(table)
    if args.docs is not None:
        replace_marked_section(args.docs, DOCS_SECTION, table)


if __name__ == "__main__":
    main()
