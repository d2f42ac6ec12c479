"""Synthetic replies: where the real posts answer one another (ingest's `reply_to`), the same share
of each synthetic set's posts become replies, written by the set's own generator with the parent
(synthetic) post in the prompt.

- **What the real posts show** (`real_replies`), per platform: the share of posts that answer
  another, how deep in its thread each reply sits (1: it answers a thread's first post), the real
  replies of each topic (the prompt's examples), and the time from a parent to its reply. A reply
  takes its parent's time plus a real delay; where the input gives none, it keeps its own drawn
  time, mirrored to after its parent's when it fell before.
- **The plan** (`plan_replies`): per platform, that share of the set's posts is drawn to be replies,
  each given a depth drawn from the real depths and a parent one level up, of the same topic where
  one exists. The set's size and every post's account, topic and platform stay as they were; the
  post's text is what changes.
- **The rounds** (`write_replies`): depth by depth, one request per parent post asks for as many
  replies as the plan gave it (the parent must exist before its replies are written). Answers go
  through the generator's ledger, the parser and the copy filter like any other; a slot without an
  accepted reply keeps its own post, and the summary says how many. A reply planned under it
  answers that post as it stands, so the summary counts each written reply at the depth its chain
  has (and how many sit shallower than planned).

`ReplyWriter` runs the rounds for every set of the structure stage and keeps their requests and
refused answers. Platforms whose input has neither `reply_to` nor answering post kinds (reply,
comment) get no replies: no links are invented.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import GeneratorConfig, PromptsConfig
from mpsynth.core import schema
from mpsynth.core.schema import ANSWER_KINDS, REPOST, values_of
from mpsynth.metrics.structure import epoch_seconds, post_depths, timestamps_of
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.postprocess.runner import CALIBRATED, generator_number

log = logging.getLogger(__name__)

NOT_A_REPLY = -1
ANY_TOPIC = None
PLURAL = {"reply": "replies", "quote": "quotes"}


@dataclass
class RealReplies:
    """One platform's reply structure in the real posts."""

    share: float  # posts that answer another post, over all the platform's posts
    depths: np.ndarray  # replies by depth: index 0 holds those answering a thread's first post
    examples: dict[int | None, list[str]]  # topic (ANY_TOPIC: all) -> ids of real replies
    delays: np.ndarray  # seconds from a parent to its reply, where both are timed


def answering(posts: pa.Table) -> list[bool]:
    """Whether each post answers another: it names a parent, or its kind is reply or comment."""
    return [
        bool(to) or kind in ANSWER_KINDS
        for to, kind in zip(
            values_of(posts, "reply_to"), values_of(posts, "post_kind"), strict=True
        )
    ]


def real_replies(posts: pa.Table, topics: np.ndarray, max_depth: int) -> dict[str, RealReplies]:
    """Each platform's replies (only platforms where some post answers another). `posts` has id,
    platform, timestamp and reply_to or post_kind (or both); `topics` is row-aligned. A post whose
    kind is reply or comment but that names no parent (a Reddit comment whose thread is all the
    input gives) answers its thread's first post: depth 1, no delay known."""
    chosen = answering(posts)
    if not any(chosen):
        return {}
    ids, reply_to = values_of(posts, "id"), values_of(posts, "reply_to")
    depth, _ = post_depths(ids, reply_to)
    found = {}
    for name, (rows, replies, examples, delays) in _linked(posts, topics, chosen, reply_to):
        levels = np.clip([depth[ids[r]] - 1 for r in replies], 1, max_depth)
        found[name] = RealReplies(
            share=len(replies) / len(rows),
            depths=np.bincount(levels - 1, minlength=max_depth).astype(float),
            examples=examples,
            delays=delays,
        )
    return found


def real_quotes(posts: pa.Table, topics: np.ndarray) -> dict[str, RealReplies]:
    """Each platform's quotes (post_kind quote), in the form the reply rounds plan from: the share
    of posts that quote another, all at depth 1, the real quotes of each topic as examples, and
    the delay from a quoted post to its quote where `quote_of` links them."""
    chosen = [kind == "quote" for kind in values_of(posts, "post_kind")]
    return {
        name: RealReplies(len(quotes) / len(rows), np.array([1.0]), examples, delays)
        for name, (rows, quotes, examples, delays) in _linked(
            posts, topics, chosen, values_of(posts, "quote_of")
        )
    }


def _linked(posts: pa.Table, topics: np.ndarray, chosen: list[bool], links: list):
    """For each platform with a chosen post: (its rows, the chosen rows, their ids by topic and
    under ANY_TOPIC, the seconds from the post each links to where both are timed)."""
    ids = values_of(posts, "id")
    platform = np.array(values_of(posts, "platform"), dtype=object)
    seconds = epoch_seconds(posts.column("timestamp"))
    row_of = {post_id: row for row, post_id in enumerate(ids)}
    for name in sorted(set(platform.tolist())):
        rows = np.flatnonzero(platform == name)
        mine = [r for r in rows.tolist() if chosen[r]]
        if not mine:
            continue
        examples: dict[int | None, list[str]] = defaultdict(list)
        delays = []
        for r in mine:
            examples[int(topics[r])].append(ids[r])
            examples[ANY_TOPIC].append(ids[r])
            parent = row_of.get(links[r]) if links[r] else None
            if parent is not None and seconds[parent] <= seconds[r]:  # NaN compares False
                delays.append(seconds[r] - seconds[parent])
        yield name, (rows, mine, dict(examples), np.array(delays))


def planned_rounds(
    posts: pa.Table, requests: pa.Table, replies: bool, quotes: bool, reposts: bool
) -> dict:
    """generator -> the reply and quote slots the structure stage will plan in its plain sets, the
    most requests their first rounds send (one per parent; a calibrated set asks nothing): each
    platform's real shares (`posts`: ingest's, with platform, reply_to and post_kind) times the
    posts the prompts ask of it (`requests`: the prompts stage's)."""
    totals: dict[str, int] = defaultdict(int)
    answers: dict[str, int] = defaultdict(int)
    quoting: dict[str, int] = defaultdict(int)
    for p, answer, k in zip(
        values_of(posts, "platform"), answering(posts), values_of(posts, "post_kind"), strict=True
    ):
        # with reposts added after the rounds, the shares are of the posts that are no repost
        totals[p] += not (reposts and k == REPOST)
        answers[p] += answer
        quoting[p] += k == "quote"
    asked: dict[tuple[str, str, str], int] = defaultdict(int)  # (generator, strategy, platform)
    for generator, strategy, targets, each in zip(
        requests.column("generator").to_pylist(),
        requests.column("strategy").to_pylist(),
        requests.column("target_platforms").to_pylist(),
        requests.column("posts_per_platform").to_pylist(),
        strict=True,
    ):
        for target in targets:
            asked[(generator, strategy, target)] += each
    slots: dict[str, int] = defaultdict(int)
    for (generator, _, target), count in asked.items():
        share = (replies * answers[target] + quotes * quoting[target]) / max(totals[target], 1)
        slots[generator] += min(round(share * count), max(count - 1, 0))
    return dict(slots)


def plan_replies(
    platform: list[str],
    topic: list,
    real: dict[str, RealReplies],
    rng: np.random.Generator,
    eligible: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(each post's parent row or NOT_A_REPLY, each post's reply depth, 0 for a thread's first
    post). Per platform, the real share of its posts become replies (one post always stays a
    first post); each reply's depth is drawn from the real depths and its parent is a post one
    level up, of the same topic where there is one (else any), never deeper than the posts allow.
    With `eligible`, only those rows may become replies (any row may still be a parent)."""
    n = len(platform)
    parent = np.full(n, NOT_A_REPLY, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    names = np.array(platform, dtype=object)
    for name, replies in sorted(real.items()):
        rows = np.flatnonzero(names == name)
        free = rows if eligible is None else rows[eligible[rows]]
        count = min(round(replies.share * len(rows)), len(free), len(rows) - 1)
        if count <= 0:
            continue
        slots = rng.choice(free, count, replace=False)
        wanted = 1 + rng.choice(len(replies.depths), count, p=replies.depths / replies.depths.sum())
        order = np.argsort(wanted, kind="stable")
        chosen = set(slots.tolist())
        # levels[d][topic]: rows at depth d by topic; levels[d][ANY_TOPIC]: all of them
        levels: list[dict] = [defaultdict(list)]
        for row in rows.tolist():
            if row not in chosen:
                levels[0][topic[row]].append(row)
                levels[0][ANY_TOPIC].append(row)
        for slot, level in zip(slots[order].tolist(), wanted[order].tolist(), strict=True):
            while level > 1 and (level > len(levels) or not levels[level - 1][ANY_TOPIC]):
                level -= 1  # no post one level up to answer: a shallower reply
            above = levels[level - 1]
            candidates = above.get(topic[slot]) or above[ANY_TOPIC]
            parent[slot] = candidates[int(rng.integers(len(candidates)))]
            depth[slot] = level
            if level == len(levels):
                levels.append(defaultdict(list))
            levels[level][topic[slot]].append(slot)
            levels[level][ANY_TOPIC].append(slot)
    return parent, depth


def reply_requests(
    parents: dict[int, list[int]],
    table: pa.Table,
    texts: list[str],
    real: dict[str, RealReplies],
    real_text: Callable[[str], str],
    shown: Callable[[str, str], str],
    template: tuple,
    generator: GeneratorConfig,
    examples_per_prompt: int,
    rng: np.random.Generator,
) -> pa.Table:
    """One request per parent row (in `parents`, parent row -> its reply slots) asking for as many
    replies as it has slots; the prompt shows real replies of the parent's platform and topic and
    the parent's current text. `real_text(id)` is a real post's text; `shown(text, platform)` is
    any text as the prompt may show it (pseudonymised for a hosted generator: the real examples
    and the parent alike, since a parent may hold what calibration or the model put there)."""
    from mpsynth.stages.prompts.build import (
        format_examples,
        generation_params,
        provider_identity,
        request_id,
    )

    system, user = template
    params = generation_params(generator)
    identity = provider_identity(generator)
    platform = table.column("platform").to_pylist()
    topic = table.column("topic").to_pylist()
    strategy = table.column("strategy").to_pylist()
    ids = table.column("id").to_pylist()
    rows: dict[str, list] = {name: [] for name in schema.GENERATION_REQUESTS.names}
    for row, slots in parents.items():
        name = platform[row]
        pool = real[name].examples.get(topic[row]) or real[name].examples[ANY_TOPIC]
        take = min(examples_per_prompt, len(pool))
        picked = [pool[i] for i in sorted(rng.choice(len(pool), take, replace=False).tolist())]
        values = {
            "n_examples": take,
            "platform_list": name,
            "examples": format_examples([(name, shown(real_text(i), name)) for i in picked]),
            "parent": shown(texts[row], name),
            "posts_per_platform": len(slots),
            "target_list": name,
        }
        messages = [
            {"role": "system", "content": system.safe_substitute(values)},
            {"role": "user", "content": user.safe_substitute(values)},
        ]
        seed = int(rng.integers(2**31))
        rows["request_id"].append(request_id(identity, params, messages, seed))
        rows["generator"].append(generator.name)
        rows["pool_id"].append(f"reply-{ids[row]}")
        rows["strategy"].append(strategy[row])
        rows["topic"].append(topic[row])
        rows["target_platforms"].append([name])
        rows["posts_per_platform"].append(len(slots))
        rows["example_ids"].append(picked)
        rows["messages"].append(messages)
        rows["provider"].append(generator.provider.kind)
        rows["model"].append(generator.provider.model)
        rows["params_json"].append(json.dumps(params, sort_keys=True))
        rows["seed"].append(seed)
        rows["label"].append(None)
        rows["cues"].append([])
    return pa.Table.from_pydict(rows, schema=schema.GENERATION_REQUESTS)


@dataclass
class Replies:
    """What the rounds changed in one set: row-aligned with it."""

    reply_to: list[str | None]
    thread_id: list[str | None]
    text: list[str]
    request_id: list[str]
    example_ids: list[list[str]]
    seconds: np.ndarray
    summary: dict


Answer = Callable[[pa.Table], dict[str, list[str]]]  # requests -> request id -> accepted texts


def write_replies(
    table: pa.Table,
    real: dict[str, RealReplies],
    prompts: PromptsConfig,
    generator: GeneratorConfig,
    examples_per_prompt: int,
    real_text: Callable[[str], str],
    shown: Callable[[str, str], str],
    answer: Answer,
    rng: np.random.Generator,
    retries: int = 3,
    kind: str = "reply",
    eligible: np.ndarray | None = None,
) -> Replies:
    """Plan the set's replies (or quotes: `kind`, the template's name) and write them round by
    round, depth by depth; `answer` completes a round's requests (through the ledger) and returns
    each request's accepted texts. A slot whose answer was refused (unparseable, a copy) is asked
    again up to `retries` times; `eligible` as in plan_replies."""
    from mpsynth.stages.prompts.build import load_template

    platform = table.column("platform").to_pylist()
    topic = table.column("topic").to_pylist()
    ids = table.column("id").to_pylist()
    parent, depth = plan_replies(platform, topic, real, rng, eligible)
    texts = table.column("text").to_pylist()
    request_ids = table.column("request_id").to_pylist()
    examples = table.column("example_ids").to_pylist()
    seconds = (
        epoch_seconds(table.column("timestamp")).copy()  # a view of Arrow's buffer otherwise
        if "timestamp" in table.column_names
        else np.full(len(ids), np.nan)
    )
    written = np.zeros(len(ids), dtype=bool)
    template = load_template(kind, prompts)
    requests_made = 0
    for level in range(1, int(depth.max(initial=0)) + 1):
        pending = np.flatnonzero(depth == level).tolist()
        for _ in range(1 + retries):  # slots whose answers were refused are asked again
            parents: dict[int, list[int]] = defaultdict(list)
            for slot in pending:
                parents[int(parent[slot])].append(slot)
            requests = reply_requests(
                parents,
                table,
                texts,
                real,
                real_text,
                shown,
                template,
                generator,
                examples_per_prompt,
                rng,
            )
            requests_made += requests.num_rows
            answers = answer(requests)
            for row, rid, picked in zip(
                parents,
                requests.column("request_id").to_pylist(),
                requests.column("example_ids").to_pylist(),
                strict=True,
            ):
                for slot, text in zip(parents[row], answers.get(rid, []), strict=False):
                    texts[slot], request_ids[slot], examples[slot] = text, rid, picked
                    written[slot] = True
                    delays = real[platform[slot]].delays
                    if len(delays) and not np.isnan(seconds[row]):
                        seconds[slot] = seconds[row] + delays[rng.integers(len(delays))]
                    elif seconds[slot] < seconds[row]:  # never before its parent: as far after
                        seconds[slot] = 2 * seconds[row] - seconds[slot]
            pending = [slot for slot in pending if not written[slot]]
            if not pending:
                break
    reply_to = [ids[parent[r]] if written[r] else None for r in range(len(ids))]
    chain, root = post_depths(ids, reply_to)
    thread_id = [root[i] if platform[r] in real else None for r, i in enumerate(ids)]
    # a reply whose planned parent reply was refused answers that post as it stands (a first
    # post, or a reply higher up): its depth is its chain's, not the plan's
    actual = np.array([chain[i] - 1 for i in ids], dtype=np.int64)
    summary = _summary(platform, actual, written, real, planned=depth)
    summary["requests"] = requests_made
    return Replies(reply_to, thread_id, texts, request_ids, examples, seconds, summary)


def _summary(platform, depth, written, real, planned) -> dict:
    """Per platform: replies planned and written, the written ones by the depth their chain has
    (`depth`), and how many sit shallower than planned because a reply above them was refused."""
    by_platform = {}
    names = np.array(platform, dtype=object)
    for name in sorted(real):
        rows = names == name
        wanted = rows & (planned > 0)
        done = wanted & written
        by_platform[name] = {
            "posts": int(rows.sum()),
            "real_share": round(real[name].share, 4),
            "planned": int(wanted.sum()),
            "written": int(done.sum()),
            "by_depth": {
                int(d): int(((depth == d) & done).sum()) for d in np.unique(depth[done]).tolist()
            },
            "shallower_than_planned": int((done & (depth < planned)).sum()),
        }
    return {"platforms": by_platform}


class ReplyWriter:
    """The reply rounds of every set in one stage: each plain set's replies are written by its own
    generator, through its ledger, the parser and the copy filter; a calibrated set takes its
    plain set's replies (the same posts, so the same slots), so nothing is asked twice."""

    def __init__(
        self,
        ctx: StageContext,
        real: dict[str, RealReplies],
        out: Path,
        quotes: dict[str, RealReplies] | None = None,
    ) -> None:
        self.ctx, self.out = ctx, out
        self.real = {"reply": real, "quote": quotes or {}}
        self.done: dict[tuple[str, str], Replies] = {}
        self.ids: dict[tuple[str, str], list[str]] = {}
        self.rejected: list[pa.Table] = []
        self.requests: list[pa.Table] = []
        self._index: Any = None
        self._texts: dict[str, str] | None = None

    def add(
        self, table: pa.Table, name: str, seed, kind: str = "reply"
    ) -> tuple[pa.Table, dict[str, Any]]:
        """The set with its replies (or quotes: `kind`) written; the rounds' summary. Quotes are
        written after replies, in posts that are no reply, and link by `quote_of`."""
        base = (name.removesuffix(CALIBRATED), kind)
        if base in self.done and self.ids[base] == table.column("id").to_pylist():
            replies = self.done[base]
            # calibrated texts stay where a post is not a reply
            texts = [
                r if to is not None else t
                for t, r, to in zip(
                    table.column("text").to_pylist(), replies.text, replies.reply_to, strict=True
                )
            ]
            replies = dataclasses.replace(replies, text=texts)
        else:
            replies = self._write(table, name, seed, kind)
            self.done[(name, kind)] = replies
            self.ids[(name, kind)] = table.column("id").to_pylist()
        log.info("structure %s: %s", name, _replies_line(replies.summary, kind))
        if kind == "quote":
            return _with_quotes(table, replies), replies.summary
        return _with_replies(table, replies), replies.summary

    def _write(self, table: pa.Table, name: str, seed, kind: str) -> Replies:
        from mpsynth.stages.prompts.guard import Pseudonymiser, guard_applies

        config = self.ctx.config
        number = generator_number(config, name)
        generator = config.generate.generators[number]
        masked = guard_applies(config.prompts.privacy_guard, generator.provider.kind)
        guard = Pseudonymiser(config.seed, config.prompts.phone_region) if masked else None

        def shown(text: str, platform: str) -> str:
            return guard(text, platform) if guard is not None else text

        eligible = None
        if kind == "quote" and "reply_to" in table.column_names:  # a reply is no quote
            eligible = np.array([to is None for to in table.column("reply_to").to_pylist()])
        return write_replies(
            table,
            self.real[kind],
            config.prompts,
            generator,
            config.pools.examples_per_prompt,
            lambda post_id: self._real_texts()[post_id],
            shown,
            lambda requests: self._answer(requests, name, number),
            np.random.default_rng([*seed, 7 if kind == "reply" else 9]),
            config.structure.reply_retries,
            kind,
            eligible,
        )

    def _answer(self, requests: pa.Table, name: str, number: int) -> dict[str, list[str]]:
        from mpsynth.stages.generate import generate_requests
        from mpsynth.stages.postprocess.parse import postprocess
        from mpsynth.stages.postprocess.runner import drop_copies, real_index

        self.requests.append(requests)
        rows, _ = generate_requests(self.ctx, number, requests)
        result = postprocess(requests, pa.Table.from_pylist(rows, schema=schema.COMPLETIONS))
        self.rejected.append(result.rejected)
        parsed = result.datasets.get(name.removesuffix(CALIBRATED))
        if parsed is None:
            return {}
        if self._index is None:
            self._index = real_index(self.ctx)
        kept, rejected, _ = drop_copies(self.ctx, self._index, {"replies": parsed})
        self.rejected.extend(rejected)
        answers: dict[str, list[str]] = defaultdict(list)
        for rid, text in zip(
            kept["replies"].column("request_id").to_pylist(),
            kept["replies"].column("text").to_pylist(),
            strict=True,
        ):
            answers[rid].append(text)
        return answers

    def _real_texts(self) -> dict[str, str]:
        if self._texts is None:
            posts = pq.read_table(self.ctx.reference(), columns=["id", "text"])
            self._texts = dict(
                zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
            )
        return self._texts

    def close(self) -> dict[str, int]:
        """Write every reply request (the provenance of each reply's `request_id`) and every
        rejected answer (parse and copy filter) with its reason; their row counts."""
        written = {}
        for name, tables, empty in (
            ("reply_requests", self.requests, schema.GENERATION_REQUESTS),
            ("rejected_replies", self.rejected, schema.REJECTED_OUTPUTS),
        ):
            table = pa.concat_tables(tables) if tables else empty.empty_table()
            written[name] = write_table(table, self.out / f"{name}.parquet")
        return written


def with_columns(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    """`table` with each column replaced where it has one, else appended."""
    out = table
    for name, values in columns.items():
        if name in out.column_names:
            position = out.column_names.index(name)
            out = out.set_column(position, pa.field(name, values.type), values)
        else:
            out = out.append_column(name, values)
    return out


def _written(written: Replies) -> dict[str, pa.Array]:
    """What the rounds wrote into a set's rows: texts, provenance and times."""
    return {
        "text": pa.array(written.text, pa.string()),
        "request_id": pa.array(written.request_id, pa.string()),
        "example_ids": pa.array(written.example_ids, pa.list_(pa.string())),
        "timestamp": timestamps_of(written.seconds),
    }


def _with_replies(table: pa.Table, replies: Replies) -> pa.Table:
    return with_columns(
        table,
        {
            **_written(replies),
            "reply_to": pa.array(replies.reply_to, pa.string()),
            "thread_id": pa.array(replies.thread_id, pa.string()),
        },
    )


def _with_quotes(table: pa.Table, quotes: Replies) -> pa.Table:
    """The set with its written quotes, `quote_of` naming the quoted post (a quote starts no
    thread and answers nothing)."""
    return with_columns(
        table, {**_written(quotes), "quote_of": pa.array(quotes.reply_to, pa.string())}
    )


def _replies_line(summary: dict[str, Any], kind: str = "reply") -> str:
    return (
        "; ".join(
            f"{p} {s['written']:,} of {s['planned']:,} {PLURAL[kind]} (real share "
            f"{s['real_share']:.0%})"
            for p, s in summary["platforms"].items()
        )
        + f"; {summary['requests']:,} requests"
    )
