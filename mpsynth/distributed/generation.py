"""Generation on Ray: one governor actor per generator (rate limits, breaker, budget shared by all its
workers), async worker actors each running a GenerationEngine, and the driver loop that reports
progress and re-runs what a dead worker left unfinished."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from mpsynth.config import GeneratorConfig, RayConfig
from mpsynth.core import console
from mpsynth.core.errors import ProviderError
from mpsynth.distributed.interrupts import terminate_as_interrupt
from mpsynth.distributed.session import require_ray
from mpsynth.generation.engine import GenerationEngine, LocalGovernor
from mpsynth.generation.ledger import (
    Lease,
    LedgerWriter,
    Mirror,
    read_ledger,
    recover,
    succeeded_ids,
    take_over,
)
from mpsynth.generation.pricing import Price
from mpsynth.generation.ratelimit import CircuitOpen, RateGovernor, Settlement
from mpsynth.providers import FatalProviderError, GenerationRequest, RealCorpus, build_provider

log = logging.getLogger(__name__)
MAX_ROUNDS = 3
POLL_S = 0.5  # how often the driver refreshes the progress display
DRIVER_CHECK_S = 0.2  # how often a worker checks that its driver is alive
WORKER_PREFIX = "mpsynth-generate"


@ray.remote(num_cpus=0)
class GovernorActor:
    def __init__(self, generator: GeneratorConfig, budget_usd: float | None) -> None:
        self.governor = RateGovernor(generator.rate, generator.circuit_breaker, budget_usd)

    async def acquire(self, tokens: int, worst_cost_usd: float) -> None:
        await self.governor.acquire(tokens, worst_cost_usd)

    def settle(self, attempt: Settlement) -> None:
        self.governor.settled(attempt)

    def failed(
        self, reserved: int, status: int | None, retry_after: float | None, worst: float
    ) -> None:
        self.governor.failed(reserved, status, retry_after, worst)

    def unused(self, reserved: int, worst: float) -> None:
        self.governor.unused(reserved, worst)

    def request_finished(self, ok: bool) -> None:
        self.governor.request_finished(ok)

    def snapshot(self) -> dict:
        return self.governor.snapshot()


class RemoteGovernor:
    """The engine's Governor interface over the shared governor actor."""

    def __init__(self, handle: ray.actor.ActorHandle) -> None:
        self.handle = handle

    async def acquire(self, tokens: int, worst_cost_usd: float) -> None:
        try:
            await self.handle.acquire.remote(tokens, worst_cost_usd)
        except RayTaskError as error:
            # the governor's own exception (budget reached, breaker open), not Ray's wrapping of it
            # with the remote traceback in its text
            raise error.cause from None

    async def settle(self, attempt: Settlement) -> None:
        await self.handle.settle.remote(attempt)

    async def failed(
        self, reserved: int, status: int | None, retry_after: float | None, worst: float
    ) -> None:
        await self.handle.failed.remote(reserved, status, retry_after, worst)

    async def unused(self, reserved: int, worst: float) -> None:
        await self.handle.unused.remote(reserved, worst)

    async def request_finished(self, ok: bool) -> None:
        await self.handle.request_finished.remote(ok)


@ray.remote
class GenerationWorker:
    def __init__(
        self,
        generator: GeneratorConfig,
        corpus: RealCorpus,
        ledger_dir: Path,
        governor: ray.actor.ActorHandle,
        price: Price | None,
        flush_every: int,
        flush_interval_s: float,
        seed: int,
        lease_token: str,
        secret: Secret | None = None,
        mirror: Mirror | None = None,
        driver: tuple[str, int] = ("", 0),
    ) -> None:
        self.driver = driver  # (host, process id) of the driver that started this worker
        if secret is not None:  # this actor's own process: the provider reads it from there
            os.environ[secret.env] = secret.reveal()
        self.engine = GenerationEngine(
            build_provider(generator.provider, generator.retry, corpus),
            generator,
            RemoteGovernor(governor),
            LedgerWriter(
                ledger_dir, flush_every, flush_interval_s, Lease(ledger_dir, lease_token), mirror
            ),
            price,
            seed,
            Lease(ledger_dir, lease_token),
        )

    async def run(self, requests: pa.Table) -> dict[str, int]:
        watch = asyncio.create_task(self._watch_driver())
        try:
            return await self.engine.run(GenerationRequest.stream(requests))
        finally:
            watch.cancel()
            await self.engine.provider.close()

    async def stop(self) -> None:
        """The run was interrupted: start no new request; those in flight finish and are written."""
        self.engine.stop()

    async def _watch_driver(self) -> None:
        """Stop starting requests the moment the driver is gone (Ray takes seconds to end the
        actors of a dead driver, and their answers would go nowhere). The driver's process is
        watched where it shares this machine; elsewhere Ray's own owner check ends the actor."""
        if self.driver[0] != socket.gethostname():
            return
        while True:
            await asyncio.sleep(DRIVER_CHECK_S)
            if not psutil.pid_exists(self.driver[1]):
                log.warning("generation worker: the driver is gone; no new requests")
                self.engine.stop()
                return


class Secret:
    """An API key on its way to a worker actor. Passed as a constructor argument (held in Ray's
    memory with the actor's task), never in a runtime_env: Ray writes runtime_env contents into
    its log files. Its repr never shows the value."""

    def __init__(self, env: str, value: str) -> None:
        self.env = env
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.env}=***)"


def _secret(generator: GeneratorConfig) -> Secret | None:
    key_env = getattr(generator.provider, "api_key_env", None)
    if key_env and os.environ.get(key_env):
        return Secret(key_env, os.environ[key_env])
    return None


def _worker_options(generator: GeneratorConfig, ray_config: RayConfig, name: str) -> dict:
    options = {
        "name": name,
        "num_cpus": ray_config.actor_num_cpus,
        "max_restarts": 0,
        "resources": ray_config.resources_for("generate"),
    }
    if generator.provider.kind == "vllm":
        options["num_gpus"] = generator.provider.tensor_parallel_size
    return options


def run_generator(
    generator: GeneratorConfig,
    requests: pa.Table,
    ledger_dir: Path,
    corpus: RealCorpus,
    price: Price | None,
    budget_usd: float | None,
    ray_config: RayConfig,
    flush_every: int = 32,
    flush_interval_s: float = 2.0,
    progress_interval_s: float = 5.0,
    seed: int = 0,
    mirror: Mirror | None = None,
) -> dict[str, float]:
    """Complete this generator's requests that the ledger does not already hold as successes
    (each ledger part also pushed to `mirror`, a remote run directory's ledger)."""
    lease = take_over(ledger_dir, mirror)
    pending = _without(requests, succeeded_ids(read_ledger(ledger_dir)))
    log.info(
        "generate %s: %d requests, %d already in the ledger, %d to run",
        generator.name,
        requests.num_rows,
        requests.num_rows - pending.num_rows,
        pending.num_rows,
    )
    if not pending.num_rows:
        lease.release()
        return {}
    # the offline stand-in on a few requests runs here: starting worker actors (each loading the
    # corpus) costs more than the work, as for a small Ray Data pass
    here = generator.provider.kind == "markov" and pending.num_rows < ray_config.local_rows
    try:
        with console.progress(
            f"generate {generator.name}",
            pending.num_rows,
            unit="req",
            interval_s=progress_interval_s,
        ) as shown:
            if here:
                log.info(
                    "generate %s: %d requests in this process", generator.name, pending.num_rows
                )
                totals, snapshot = _run_here(
                    generator,
                    pending,
                    ledger_dir,
                    corpus,
                    RateGovernor(generator.rate, generator.circuit_breaker, budget_usd),
                    price,
                    lease,
                    seed,
                    flush_every,
                    flush_interval_s,
                    shown,
                    mirror,
                )
            else:  # worker actors sharing one governor actor
                require_ray()
                governor = GovernorActor.remote(generator, budget_usd)
                try:
                    totals = _run_rounds(
                        generator,
                        pending,
                        ledger_dir,
                        corpus,
                        governor,
                        price,
                        ray_config,
                        lease,
                        seed,
                        flush_every,
                        flush_interval_s,
                        shown,
                        mirror,
                    )
                    snapshot = ray.get(governor.snapshot.remote())
                finally:
                    ray.kill(governor)
    except (FatalProviderError, CircuitOpen) as error:
        # a RayTaskError's text carries the remote traceback: report the cause alone
        cause = getattr(error, "cause", None) or error
        raise ProviderError(f"generator {generator.name}: {cause}") from None
    finally:
        lease.release()  # every worker of this run has been killed by now
    totals["rate_limited"] = snapshot["rate_limited"]
    totals["breaker_trips"] = snapshot["breaker_trips"]
    return dict(totals)


def _without(requests: pa.Table, request_ids: set[str] | pa.ChunkedArray) -> pa.Table:
    """The requests whose id is not among `request_ids`."""
    if isinstance(request_ids, pa.ChunkedArray):
        ids = request_ids.combine_chunks().cast(pa.string())
    else:
        ids = pa.array(sorted(request_ids), pa.string())
    return requests.filter(pc.invert(pc.is_in(requests["request_id"], value_set=ids)))


def _run_rounds(
    generator: GeneratorConfig,
    pending: pa.Table,
    ledger_dir: Path,
    corpus: RealCorpus,
    governor: ray.actor.ActorHandle,
    price: Price | None,
    ray_config: RayConfig,
    lease: Lease,
    seed: int,
    flush_every: int,
    flush_interval_s: float,
    shown: console.Progress,
    mirror: Mirror | None = None,
) -> Counter[str]:
    """Workers over the pending requests; a worker that dies leaves its unfinished requests to the
    next round."""
    totals: Counter[str] = Counter()
    for round_number in range(1, MAX_ROUNDS + 1):
        run_id = uuid.uuid4().hex[:8]
        workers = [
            GenerationWorker.options(
                **_worker_options(
                    generator, ray_config, f"{WORKER_PREFIX}-{generator.name}-{run_id}-{i}"
                )
            ).remote(
                generator,
                corpus,
                ledger_dir,
                governor,
                price,
                flush_every,
                flush_interval_s,
                seed + i,
                lease.token,
                _secret(generator),
                mirror,
                (socket.gethostname(), os.getpid()),
            )
            for i in range(min(generator.actors, pending.num_rows))
        ]
        running = {  # each worker every n-th request, as Arrow (made into requests as drawn)
            worker.run.remote(pending.take(np.arange(i, pending.num_rows, len(workers)))): worker
            for i, worker in enumerate(workers)
        }
        try:
            with terminate_as_interrupt():
                try:
                    lost_worker = _collect(running, generator, governor, shown, totals)
                except KeyboardInterrupt:
                    _drain(workers, running, generator, governor, shown, totals)
                    raise
        finally:
            for worker in workers:
                ray.kill(worker)
        if not lost_worker:
            break
        recover(ledger_dir, mirror)  # what the dead worker had received, from its log
        pending = _without(pending, read_ledger(ledger_dir).column("request_id"))
        if not pending.num_rows:
            break
        log.info(
            "generate %s: round %d re-runs %d requests",
            generator.name,
            round_number + 1,
            pending.num_rows,
        )
    return totals


def _run_here(
    generator: GeneratorConfig,
    pending: pa.Table,
    ledger_dir: Path,
    corpus: RealCorpus,
    governor: RateGovernor,
    price: Price | None,
    lease: Lease,
    seed: int,
    flush_every: int,
    flush_interval_s: float,
    shown: console.Progress,
    mirror: Mirror | None,
) -> tuple[Counter[str], dict]:
    """The requests completed by one engine in the driver, with the same provider, governor,
    ledger and lease as a worker actor's: (counts, the governor's last snapshot)."""
    engine = GenerationEngine(
        build_provider(generator.provider, generator.retry, corpus),
        generator,
        LocalGovernor(governor),
        LedgerWriter(ledger_dir, flush_every, flush_interval_s, lease, mirror),
        price,
        seed,
        lease,
    )

    async def complete() -> dict[str, int]:
        async def report() -> None:  # as the driver polls the actors' governor
            while True:
                _show(shown, governor.snapshot())
                await asyncio.sleep(POLL_S)

        reporter = asyncio.create_task(report())
        try:
            return await engine.run(GenerationRequest.stream(pending))
        finally:
            reporter.cancel()
            await engine.provider.close()
            _show(shown, governor.snapshot())

    totals = Counter(asyncio.run(complete()))
    return totals, governor.snapshot()


def _show(shown: console.Progress, snapshot: dict) -> None:
    shown.update(
        snapshot["requests_done"] + snapshot["requests_failed"],
        spent=f"${snapshot['spent_usd']:.4f}",
        failed=snapshot["requests_failed"],
        **{"429s": snapshot["rate_limited"]},
    )


def _collect(
    running: dict,
    generator: GeneratorConfig,
    governor: ray.actor.ActorHandle,
    shown: console.Progress,
    totals: Counter[str],
    deadline: float | None = None,
) -> bool:
    """Wait for the workers' results (until `deadline`, a monotonic time, if given), adding
    their counts to `totals`; whether a worker died."""
    lost_worker = False
    while running and (deadline is None or time.monotonic() < deadline):
        ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
        _show(shown, ray.get(governor.snapshot.remote()))
        for ref in ready:
            running.pop(ref)
            try:
                totals.update(ray.get(ref))
            except (ActorDiedError, ActorUnavailableError, RayActorError) as error:
                if getattr(error, "actor_init_failed", False):
                    raise ProviderError(
                        f"generator {generator.name}: a worker could not start: {error}"
                    ) from None
                lost_worker = True
                log.warning(
                    "generate %s: a worker died (%s); its unfinished requests will be re-run",
                    generator.name,
                    type(error).__name__,
                )
    return lost_worker


def _drain(
    workers: list,
    running: dict,
    generator: GeneratorConfig,
    governor: ray.actor.ActorHandle,
    shown: console.Progress,
    totals: Counter[str],
) -> None:
    """An interrupted run: no worker starts another request, and the answers of the requests in
    flight (already paid for) are waited for and written, so the next run asks for none twice."""
    log.warning(
        "generate %s: interrupted; finishing the requests in flight (interrupt again to stop "
        "at once)",
        generator.name,
    )
    ray.get([worker.stop.remote() for worker in workers])
    retry = generator.retry
    deadline = time.monotonic() + retry.timeout_s * retry.max_attempts + retry.max_delay_s
    # the run ends anyway; what was answered is in the ledger
    with suppress(ProviderError, FatalProviderError, CircuitOpen, RayTaskError):
        _collect(running, generator, governor, shown, totals, deadline)
    log.warning(
        "generate %s: stopped; the answers so far are in the ledger: run again to resume",
        generator.name,
    )
