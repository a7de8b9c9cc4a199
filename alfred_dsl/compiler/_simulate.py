"""``alfredc simulate``: a plan run many times on a virtual clock, no process started.

Each attempt of a stage takes a lognormal time whose mean is the stage's ``estimate`` and
whose standard deviation is its ``spread`` (default a quarter of the estimate; ``0s``: the
estimate exactly), and fails with the probability ``fail_rate`` (the stage's, else its
agent's, else 0); a failed attempt takes its whole drawn time, and an attempt that lasts the
stage's ``timeout`` or longer fails at the timeout. Everything else is the runtime's policy,
imported from :mod:`._dispatch` where it is a formula: ready stages in ``ready_key``
order, the least busy free agent (``pick_agent``), ``-j`` and agent ``concurrency`` never
exceeded, retries waiting ``retry_delay`` while holding their slot (then ``retry_agent``),
``on_failure = stop | continue``, ``upstream_failed``/``cancelled``/``skipped`` propagation,
``run_if``, the workflow's ``timeout`` with the cleanup grace.

What a simulation cannot know is assumed: a ``when`` expression is true (``when = false``
skips), an approval is granted after its ``estimate`` (it holds a ``-j`` slot, no agent),
budgets never run out, incremental stages are never up to date.

A discrete-event simulation (a heap of event times), not a Trio loop per trial: 10,000
trials of a 100-stage plan take seconds (see bench/simulate.py). Events at the same time
are handled in the order they were scheduled, and each one refills the free slots at once,
as each stage task of the runtime does when it ends (a run takes simultaneous events in an
order Trio picks). tests/test_simulate_agreement.py checks the schedule against the runtime's
own scheduler on Trio's virtual clock (``runtime/_virtual.py``), given the same script of
attempts (``SimOptions.outcome``); ``simulate(..., engine=...)`` runs the trials there.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import os
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ._dispatch import pick_agent, ready_key, retry_agent, retry_delay
from ._plan import Plan

__all__ = [
    "Outcome", "SimAttempt", "SimOptions", "SimResult", "SimTrial", "TrialEngine", "critical_path",
    "percentile", "simulate",
]

#: ``outcome(stage, attempt, agent)``: how long attempt ``attempt`` (1-based) of ``stage``
#: on ``agent`` ("" for an approval) takes and whether it succeeds, instead of the random
#: draws: a script that the simulator and a run on Trio's virtual clock (runtime/_virtual.py)
#: both follow, to check that they schedule alike (tests/test_simulate_agreement.py).
Outcome = Callable[[str, int, str], tuple[float, bool]]
#: ``engine(outcome, seed)``: one trial run elsewhere with that script (``--engine trio``).
TrialEngine = Callable[[Outcome, int], "SimTrial"]

# Stage states (the runtime's names).
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, UPSTREAM_FAILED, CANCELLED = (
    "pending", "running", "succeeded", "failed", "skipped", "upstream_failed", "cancelled",
)
_BROKEN = frozenset({FAILED, UPSTREAM_FAILED, CANCELLED})
#: Event kinds.
_END, _RETRY, _TIMEOUT, _CLOSE_CLEANUP = 0, 1, 2, 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """``trials``: how many runs; ``seed``: None for a fresh one; ``concurrency``: the run's
    ``-j`` (default the CPU count, as ``alfredc run``); ``jitter``: as ``RunOptions.jitter``."""

    trials: int = 1000
    seed: int | None = None
    concurrency: int | None = None
    jitter: float = 0.1
    cleanup_grace_s: float = 300.0
    #: Each attempt's duration and success from this script instead of the random draws.
    outcome: Outcome | None = None

    @property
    def max_concurrency(self) -> int:
        if self.concurrency is not None and self.concurrency >= 1:
            return self.concurrency
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SimAttempt:
    stage: str
    n: int                 # 1-based
    agent: str             # "" for an approval
    start_s: float
    end_s: float
    state: str             # succeeded | failed | timeout | cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class SimTrial:
    """One simulated run (kept for the sample trial only)."""

    index: int
    seed: int
    makespan_s: float
    state: str                                   # succeeded | failed
    stages: tuple[tuple[str, str], ...]          # (stage, final state), plan order
    finished_s: tuple[float, ...]                # when each stage reached its final state, plan order
    attempts: tuple[SimAttempt, ...]
    critical_path: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    workflow: str
    trials: int
    seed: int
    concurrency: int
    cpm_duration_s: float
    makespans: tuple[float, ...] = field(repr=False)   # sorted
    failures: int                                       # trials whose run failed
    #: (stage, fraction of trials it was on the critical path), most often first.
    critical: tuple[tuple[str, float], ...]
    #: (agent, busy time / (makespan x concurrency) over all trials), plan order.
    utilisation: tuple[tuple[str, float], ...]
    sample: SimTrial

    def percentile(self, p: float) -> float:
        return percentile(self.makespans, p)

    @property
    def mean_s(self) -> float:
        return sum(self.makespans) / len(self.makespans) if self.makespans else 0.0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.trials if self.trials else 0.0


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of sorted values."""
    if not ordered:
        return 0.0
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


class _Model:
    """The plan in index form, computed once for every trial."""

    def __init__(self, plan: Plan, options: SimOptions) -> None:
        self.plan = plan
        stages = plan.stages
        self.n = len(stages)
        index = {s.name: i for i, s in enumerate(stages)}
        self.agent_names = [a.name for a in plan.agents]
        agent_index = {a.name: i for i, a in enumerate(plan.agents)}
        self.conc = [max(a.concurrency, 1) for a in plan.agents]
        self.deps = [tuple(dict.fromkeys(index[d] for d in s.after if d in index)) for s in stages]
        self.dependents: list[list[int]] = [[] for _ in stages]
        for i, deps in enumerate(self.deps):
            for d in deps:
                self.dependents[d].append(i)
        self.key = [ready_key(s, i) for i, s in enumerate(stages)]
        groups: dict[tuple[str, ...], int] = {}
        self.group = [groups.setdefault(s.agents, len(groups)) for s in stages]
        self.group_agents = [tuple(agent_index[a] for a in key if a in agent_index) for key in groups]
        self.agentless = [g for g, agents in enumerate(self.group_agents) if not agents]
        self.stage_agents = [tuple(agent_index[a] for a in s.agents if a in agent_index) for s in stages]
        self.approval = [s.approve is not None for s in stages]
        self.cleanup = [s.run_if != "success" for s in stages]
        self.run_if = [s.run_if for s in stages]
        self.stop_on_failure = [s.on_failure == "stop" for s in stages]
        self.when_false = [s.when is False for s in stages]
        self.total = [1 + max(s.retries, 0) for s in stages]
        self.backoff = [(s.backoff_s, s.max_backoff_s) for s in stages]
        self.timeout = [s.timeout_s if s.timeout_s and s.timeout_s > 0 else math.inf for s in stages]
        # Lognormal parameters from the mean and standard deviation; sigma 0: exact.
        self.mean = [max(s.estimate_s, 0.0) for s in stages]
        self.mu: list[float] = []
        self.sigma: list[float] = []
        for s, mean in zip(stages, self.mean, strict=True):
            sd = s.spread_s if s.spread_s is not None else mean / 4
            if mean > 0 and sd > 0:
                sigma2 = math.log(1 + (sd * sd) / (mean * mean))
                self.mu.append(math.log(mean) - sigma2 / 2)
                self.sigma.append(math.sqrt(sigma2))
            else:
                self.mu.append(0.0)
                self.sigma.append(0.0)
        agent_rate = [a.fail_rate for a in plan.agents]
        self.rate = [
            [s.fail_rate if s.fail_rate is not None else agent_rate[a] for a in range(len(plan.agents))]
            for s in stages
        ]
        self.topo = self._topological()
        self.max_concurrency = options.max_concurrency
        self.jitter = options.jitter
        self.timeout_s = plan.timeout_s if plan.timeout_s else None
        self.grace_s = options.cleanup_grace_s
        self.outcome = options.outcome
        self.names = [s.name for s in stages]

    def draw(self, rng: random.Random, i: int, agent: int) -> tuple[float, bool]:
        """A random attempt of stage ``i`` on agent ``agent`` (-1: none): its duration and success."""
        sigma = self.sigma[i]
        duration = self.mean[i] if sigma == 0.0 else rng.lognormvariate(self.mu[i], sigma)
        rate = self.rate[i][agent] if agent >= 0 else 0.0
        return duration, rate <= 0.0 or (rate < 1.0 and rng.random() >= rate)

    def draws(self, rng: random.Random) -> Outcome:
        """``draw`` as an outcome script, for another engine. Each stage draws from a
        generator of its own: stages that start at the same instant may ask in any order."""
        index = {name: i for i, name in enumerate(self.names)}
        agents = {name: a for a, name in enumerate(self.agent_names)}
        own = [random.Random(rng.getrandbits(64)) for _ in self.names]

        def outcome(stage: str, attempt: int, agent: str) -> tuple[float, bool]:
            i = index[stage]
            return self.draw(own[i], i, agents.get(agent, -1))

        return outcome

    def _topological(self) -> list[int]:
        indegree = [len(d) for d in self.deps]
        queue = deque(i for i in range(self.n) if indegree[i] == 0)
        order: list[int] = []
        while queue:
            i = queue.popleft()
            order.append(i)
            for j in self.dependents[i]:
                indegree[j] -= 1
                if indegree[j] == 0:
                    queue.append(j)
        return order


class _Trial:
    """One run of the model: the runtime's ``_Run`` bookkeeping on a virtual clock."""

    def __init__(self, model: _Model, rng: random.Random, record: bool) -> None:
        m = self.m = model
        self.rng = rng
        self.record = record
        self.attempts: list[SimAttempt] = []
        self.state = [PENDING] * m.n
        self.waiting = [len(d) for d in m.deps]
        self.agent = [-1] * m.n
        self.tries = [0] * m.n
        self.gen = [0] * m.n                  # bumped when a stage ends: its pending events are stale
        self.attempt_start = [0.0] * m.n
        self.attempt_ok = [True] * m.n
        self.attempt_timeout = [False] * m.n
        self.attempting = [False] * m.n
        self.finished = [0.0] * m.n
        self.ran = [False] * m.n
        self.busy = [0] * len(m.conc)
        self.busy_s = [0.0] * len(m.conc)
        self.running = 0
        self.ready: list[list[tuple[int, float, int, str]]] = [[] for _ in m.group_agents]
        self.ready_count = 0
        self.settle: deque[int] = deque()
        self.final_count = 0
        self.stopping = False
        self.cleanup_open = True
        self.timed_out = False
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.now = 0.0

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> float:
        m = self.m
        if m.timeout_s is not None:
            self.push(m.timeout_s, _TIMEOUT, -1)
        for i in range(m.n):
            if self.waiting[i] == 0:
                self.settle.append(i)
        self.process_settle()
        self.fill()
        events = self.events
        while events and self.final_count < m.n:
            t, _, kind, i, gen = heapq.heappop(events)
            self.now = t
            if kind == _END:
                if gen == self.gen[i]:
                    self.attempt_ended(i)
            elif kind == _RETRY:
                if gen == self.gen[i]:
                    self.retry(i)
            elif kind == _TIMEOUT:
                if not self.stopping:
                    self.timed_out = True
                    self.stop("timeout")
            elif kind == _CLOSE_CLEANUP:
                self.close_cleanup()
            self.process_settle()
            self.fill()
        return max(self.finished) if m.n else 0.0

    def push(self, t: float, kind: int, i: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, i, self.gen[i] if i >= 0 else 0))

    # -- attempts -------------------------------------------------------------------------
    def start_attempt(self, i: int) -> None:
        m = self.m
        self.tries[i] += 1
        self.ran[i] = True
        agent = self.agent[i]
        if m.outcome is not None:
            duration, ok = m.outcome(m.names[i], self.tries[i], m.agent_names[agent] if agent >= 0 else "")
        else:
            duration, ok = m.draw(self.rng, i, agent)
        # As in a run: an attempt that lasts its whole timeout is cut by it (the deadline wins a tie).
        timed_out = duration >= m.timeout[i]
        if timed_out:
            duration, ok = m.timeout[i], False
        self.attempt_start[i] = self.now
        self.attempting[i] = True
        self.attempt_ok[i] = ok
        self.attempt_timeout[i] = timed_out
        self.push(self.now + duration, _END, i)

    def close_attempt(self, i: int, state: str) -> None:
        self.attempting[i] = False
        agent = self.agent[i]
        if agent >= 0:
            self.busy_s[agent] += self.now - self.attempt_start[i]
        if self.record:
            self.attempts.append(SimAttempt(
                stage=self.m.plan.stages[i].name, n=self.tries[i],
                agent=self.m.agent_names[agent] if agent >= 0 else "",
                start_s=self.attempt_start[i], end_s=self.now, state=state,
            ))

    def attempt_ended(self, i: int) -> None:
        m = self.m
        if self.attempt_ok[i]:
            self.close_attempt(i, SUCCEEDED)
            self.finalize(i, SUCCEEDED)
            return
        self.close_attempt(i, "timeout" if self.attempt_timeout[i] else FAILED)
        if self.tries[i] < m.total[i]:
            backoff_s, max_backoff_s = m.backoff[i]
            u = self.rng.random() if m.jitter > 0 else 0.0
            self.push(self.now + retry_delay(backoff_s, max_backoff_s, self.tries[i], m.jitter, u), _RETRY, i)
        else:
            self.finalize(i, FAILED)

    def retry(self, i: int) -> None:
        """The runtime's ``_move_for_retry``, then the next attempt."""
        m = self.m
        candidates = m.stage_agents[i]
        failed = self.agent[i]
        if len(candidates) >= 2 and failed >= 0:
            busy, conc = self.busy, m.conc
            busy[failed] -= 1
            free = [a for a in candidates if busy[a] < conc[a]] or [failed]
            chosen = retry_agent(free, failed, busy.__getitem__, int)
            busy[chosen] += 1
            self.agent[i] = chosen
            if chosen != failed:
                self.fill()
        self.start_attempt(i)

    # -- readiness (the runtime's finalize / process_settle / stop) ------------------------
    def finalize(self, i: int, state: str) -> None:
        m = self.m
        if self.state[i] == RUNNING:
            self.running -= 1
            if self.agent[i] >= 0:
                self.busy[self.agent[i]] -= 1
        self.state[i] = state
        self.gen[i] += 1
        self.finished[i] = self.now
        self.final_count += 1
        for j in m.dependents[i]:
            if self.state[j] == PENDING:
                self.waiting[j] -= 1
                if self.waiting[j] == 0:
                    self.settle.append(j)
        if state == FAILED and not self.stopping and m.stop_on_failure[i]:
            self.stop("stage failed")

    def process_settle(self) -> None:
        m = self.m
        state = self.state
        while self.settle:
            i = self.settle.popleft()
            if state[i] != PENDING:
                continue
            if m.cleanup[i]:
                if self.stopping and not self.cleanup_open:
                    self.finalize(i, CANCELLED)
                    continue
                if m.run_if[i] == "failure" and not self.failing():
                    self.finalize(i, SKIPPED)
                    continue
            else:
                deps = m.deps[i]
                if deps:
                    ends = {state[d] for d in deps}
                    if not ends.isdisjoint(_BROKEN):
                        self.finalize(i, UPSTREAM_FAILED)
                        continue
                if self.stopping:
                    self.finalize(i, CANCELLED)
                    continue
                if deps and SKIPPED in ends:
                    self.finalize(i, SKIPPED)
                    continue
            if m.when_false[i]:
                self.finalize(i, SKIPPED)
                continue
            if m.approval[i]:  # granted after its estimate; holds a -j slot, no agent
                state[i] = RUNNING
                self.running += 1
                self.start_attempt(i)
                continue
            heapq.heappush(self.ready[m.group[i]], m.key[i])
            self.ready_count += 1

    def failing(self) -> bool:
        return self.timed_out or FAILED in self.state

    def stop(self, reason: str) -> None:
        m = self.m
        if self.stopping:
            return
        self.stopping = True
        # Ready cleanup stages stay ready, the others end cancelled below (as in the runtime).
        cleanup = m.cleanup
        for heap in self.ready:
            kept = [entry for entry in heap if cleanup[entry[2]]]
            heapq.heapify(kept)
            self.ready_count -= len(heap) - len(kept)
            heap[:] = kept
        if reason != "stage failed":
            self.push(self.now + m.grace_s, _CLOSE_CLEANUP, -1)
        for i in m.topo:
            if self.state[i] == PENDING and not m.cleanup[i]:
                broken = any(self.state[d] in (FAILED, UPSTREAM_FAILED) for d in m.deps[i])
                self.finalize(i, UPSTREAM_FAILED if broken else CANCELLED)
        self.settle = deque(i for i in self.settle if m.cleanup[i])
        self.process_settle()
        self.fill()
        for i in range(m.n):  # the cancelled tasks end after stop() returned
            if self.state[i] == RUNNING and not m.cleanup[i]:
                self.cancel(i)
                self.process_settle()
                self.fill()

    def cancel(self, i: int) -> None:
        if self.attempting[i]:  # else it was waiting to retry
            self.close_attempt(i, CANCELLED)
        self.finalize(i, CANCELLED)

    def close_cleanup(self) -> None:
        if not self.cleanup_open or not self.stopping:
            return
        self.cleanup_open = False
        self.clear_ready()
        for i in self.m.topo:
            if self.state[i] == PENDING:
                self.finalize(i, CANCELLED)
            elif self.state[i] == RUNNING:
                self.cancel(i)
        self.settle.clear()

    def clear_ready(self) -> None:
        for heap in self.ready:
            heap.clear()
        self.ready_count = 0

    # -- dispatch (the runtime's fill) ---------------------------------------------------
    def fill(self) -> None:
        m = self.m
        busy, conc, ready, group_agents = self.busy, m.conc, self.ready, m.group_agents
        while (
            (not self.stopping or self.cleanup_open)
            and self.running < m.max_concurrency and self.ready_count
        ):
            best = -1
            best_head: tuple[int, float, int, str] | None = None
            for g, heap in enumerate(ready):
                if not heap or (best_head is not None and not heap[0] < best_head):
                    continue
                for a in group_agents[g]:
                    if busy[a] < conc[a]:
                        best, best_head = g, heap[0]
                        break
            if best < 0:
                break
            *_, index, _name = heapq.heappop(self.ready[best])
            self.ready_count -= 1
            agent = pick_agent((a for a in m.group_agents[best] if busy[a] < conc[a]), busy.__getitem__, int)
            self.state[index] = RUNNING
            self.agent[index] = agent
            self.running += 1
            busy[agent] += 1
            self.start_attempt(index)
        # A ready stage with no declared agent can never run.
        for g in m.agentless:
            if self.ready[g]:
                for *_, index, _name in self.ready[g]:
                    self.finalize(index, FAILED)
                self.ready_count -= len(self.ready[g])
                self.ready[g].clear()

    # -- results --------------------------------------------------------------------------
    def critical_path(self) -> list[int]:
        return critical_path(self.m.deps, self.ran, self.finished)

    def run_failed(self) -> bool:
        return any(s in _BROKEN for s in self.state)


def critical_path(deps: Sequence[Sequence[int]], ran: Sequence[bool], finished: Sequence[float]) -> list[int]:
    """The report's measured critical path, as stage indices: from the stage that finished
    last, step back through the dependency that finished last (stages that never started
    left out)."""
    current = -1
    for i in range(len(deps)):
        if ran[i] and (current < 0 or finished[i] > finished[current]):
            current = i
    chain: list[int] = []
    while current >= 0:
        chain.append(current)
        best = -1
        for d in deps[current]:
            if ran[d] and (best < 0 or finished[d] > finished[best]):
                best = d
        current = best
    chain.reverse()
    return chain


def simulate(plan: Plan, options: SimOptions, engine: TrialEngine | None = None) -> SimResult:
    """Run ``plan`` ``options.trials`` times on a virtual clock (see the module docstring).

    ``engine``: run each trial there instead of in this module's discrete-event loop, with
    the same random draws of durations and failures (``alfredc simulate --engine trio``:
    the runtime's own scheduler on Trio's virtual clock, runtime/_virtual.py)."""
    model = _Model(plan, options)
    seed = options.seed if options.seed is not None else random.SystemRandom().getrandbits(32)
    master = random.Random(seed)
    trials = max(options.trials, 1)
    makespans: list[float] = []
    seeds: list[int] = []
    failures = 0
    on_path = [0] * model.n
    busy_s = [0.0] * len(model.conc)
    kept: list[SimTrial] = []
    index = {name: i for i, name in enumerate(model.names)}
    agent_index = {name: a for a, name in enumerate(model.agent_names)}
    for _ in range(trials):
        trial_seed = master.getrandbits(64)
        seeds.append(trial_seed)
        if engine is not None:
            outcome = options.outcome or model.draws(random.Random(trial_seed))
            done = engine(outcome, trial_seed)
            kept.append(done)
            makespans.append(done.makespan_s)
            failures += done.state == FAILED
            for name in done.critical_path:
                on_path[index[name]] += 1
            for attempt in done.attempts:
                if attempt.agent in agent_index:
                    busy_s[agent_index[attempt.agent]] += attempt.end_s - attempt.start_s
            continue
        trial = _Trial(model, random.Random(trial_seed), record=False)
        makespan = trial.run()
        makespans.append(makespan)
        failures += trial.run_failed()
        for i in trial.critical_path():
            on_path[i] += 1
        for a, busy in enumerate(trial.busy_s):
            busy_s[a] += busy
    median = sorted(range(trials), key=makespans.__getitem__)[(trials - 1) // 2]
    if engine is not None:
        sample_trial = dataclasses.replace(kept[median], index=median, seed=seeds[median])
    else:
        # The sample trial: the one with the median makespan, run again with its attempts recorded.
        sample = _Trial(model, random.Random(seeds[median]), record=True)
        sample_trial = SimTrial(
            index=median,
            seed=seeds[median],
            makespan_s=sample.run(),
            state=FAILED if sample.run_failed() else SUCCEEDED,
            stages=tuple((s.name, sample.state[i]) for i, s in enumerate(plan.stages)),
            finished_s=tuple(sample.finished),
            attempts=tuple(sample.attempts),
            critical_path=tuple(plan.stages[i].name for i in sample.critical_path()),
        )
    total_time = sum(makespans)
    utilisation = tuple(
        (name, busy_s[a] / (total_time * model.conc[a]) if total_time > 0 else 0.0)
        for a, name in enumerate(model.agent_names)
    )
    critical = sorted(
        ((plan.stages[i].name, count / trials) for i, count in enumerate(on_path) if count),
        key=lambda item: -item[1],
    )
    return SimResult(
        workflow=plan.workflow,
        trials=trials,
        seed=seed,
        concurrency=model.max_concurrency,
        cpm_duration_s=plan.duration_s,
        makespans=tuple(sorted(makespans)),
        failures=failures,
        critical=tuple(critical),
        utilisation=utilisation,
        sample=sample_trial,
    )
