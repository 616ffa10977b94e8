"""The prompt policy: factored discrete actions over prompt choices, trained with PPO or GRPO.

Each attempt at a scene is a one-step episode: the state is the scene, the action is a choice per
prompt factor (shot size, camera move, lighting, identity lock, ...), the return is the clip's
reward. This module holds the network and `PromptPolicy`, which acts, saves and loads; its update
runs the epochs of the rule in `algorithms/`: PPO, the clipped surrogate with a learned value
baseline (Schulman et al. 2017, arXiv:1707.06347), or GRPO, which replaces the critic with the
mean and std of the rewards of a group of attempts at the same scene (Shao et al. 2024,
DeepSeekMath, arXiv:2402.03300).
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cinerl.core.vocabulary import ACTION_FACTORS, DEFAULT_RECIPE, parse_recipe
from cinerl.training.policy.algorithms import ALGORITHMS, grpo, ppo
from cinerl.training.policy.prior import kl_to_prior, plan_prior_weights, prior_logits
from cinerl.training.policy.state import CONTEXT_DIM, FACTOR_FACTS, STATE_DIM, context_mask

log = logging.getLogger(__name__)
FACTORS = list(ACTION_FACTORS)


@dataclass
class Transition:
    state: np.ndarray
    action: dict[str, str]
    reward: float


class PolicyNet(nn.Module):
    """Per factor, logits = heads(trunk(state)) + context(c), c the state's last CONTEXT_DIM floats
    (the scene plan's one-hot facts, state.context_features).

    The trunk reads the whole state (the scene's embedding among it) and generalises between
    scenes as the embedding does; the context heads are a linear map of the plan's facts, a few
    hundred weights, so what one night scene teaches moves every night scene and nothing else.
    Both start at the prior: zero weights, the prior as the heads' bias."""

    def __init__(
        self,
        state_dim: int = STATE_DIM,
        hidden: int = 128,
        prior: dict[str, torch.Tensor] | None = None,
        context_prior: dict[str, torch.Tensor] | None = None,
        facts_per_factor: bool = False,
    ):
        super().__init__()
        # facts_per_factor: a factor's context head reads only the facts its reward reads
        # (state.FACTOR_FACTS), so what a golden scene teaches the lighting does not move the
        # lighting of every other scene of the same cast size
        masks = [context_mask(f) if facts_per_factor else np.ones(CONTEXT_DIM, np.float32) for f in FACTORS]
        self.register_buffer("context_masks", torch.as_tensor(np.stack(masks)), persistent=False)
        self.trunk = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.heads = nn.ModuleDict({f: nn.Linear(hidden, len(ACTION_FACTORS[f])) for f in FACTORS})
        self.value = nn.Linear(hidden, 1)
        self.context = nn.ModuleDict(
            {f: nn.Linear(CONTEXT_DIM, len(ACTION_FACTORS[f]), bias=False) for f in FACTORS}
        )
        self.context_value = nn.Linear(CONTEXT_DIM, 1, bias=False)
        for f, head in self.heads.items():  # start at the prior: zero weights, the prior as bias
            nn.init.zeros_(head.weight)
            nn.init.zeros_(self.context[f].weight)
            with torch.no_grad():
                if context_prior is not None:
                    self.context[f].weight.copy_(context_prior[f])
                head.bias.copy_(prior[f] if prior is not None else torch.zeros(len(ACTION_FACTORS[f])))
        nn.init.zeros_(self.context_value.weight)

    def context_parameters(self) -> list[nn.Parameter]:
        return [*self.context.parameters(), *self.context_value.parameters()]

    def forward(self, states: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        h = self.trunk(states)
        c = states[:, -CONTEXT_DIM:]
        logits = {
            f: head(h) + self.context[f](c * self.context_masks[i])
            for i, (f, head) in enumerate(self.heads.items())
        }
        # the critic reads the trunk's features without moving them (CleanRL's ppo.py keeps actor
        # and critic apart): a scene's takes share one state, so the critic cancels out of the
        # batch-centred advantages, and its larger loss through a shared trunk only pushed the
        # greedy action off the recipe (the heavy learning test's PPO arm, last 4 films: all-take 0.561
        # with the critic's gradient in the trunk, 0.600 without)
        return logits, (self.value(h.detach()) + self.context_value(c)).squeeze(-1)


class RunningStats:
    """Welford mean/variance of rewards, to scale PPO advantages the same across films."""

    def __init__(self, count: int = 0, mean: float = 0.0, m2: float = 0.0):
        self.count, self.mean, self.m2 = count, mean, m2

    def update(self, xs: list[float]) -> None:
        for x in xs:
            self.count += 1
            d = x - self.mean
            self.mean += d / self.count
            self.m2 += d * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 1.0


MODES = ("learn", "frozen", "random", "template")
EXPLORE = ("joint", "one_factor")


class PromptPolicy:
    """Acts, learns and saves. mode: 'learn' (act and update), 'frozen' (act, no update),
    'random' (uniform choices: the baseline to beat), 'template' (the recipe for every take).

    A fresh policy starts at its prior, the recipe with logit `prior_strength` (prior.py). When
    acting, `greedy=True` (the director passes it for a scene's first take when `greedy_first`)
    takes each factor's most likely value: the film keeps the best take, so exploring on the
    other takes costs nothing when the first is good. Exploring takes sample at `temperature`.

    The constructor's defaults are the plain learner the unit tests and the smoke check hold
    (PPO, joint sampling, the biases at the trunk's step); the shipped policy is
    `from_settings(Settings().policy)`: GRPO, one-factor exploration, bias_lr 0.03."""

    def __init__(
        self,
        algorithm: str = "ppo",
        mode: str = "learn",
        lr: float = 1e-2,
        epochs: int = 4,
        clip_eps: float = 0.2,
        entropy_coef: float = 0.01,
        value_coef: float = 0.5,
        seed: int = 0,
        recipe: dict[str, str] | None = None,
        prior_strength: float = 2.5,
        prior_kl: float = 0.0,
        temperature: float = 1.0,
        target_kl: float | None = None,
        context_lr: float | None = 0.1,
        explore: str = "joint",
        trunk_lr: float | None = 1e-3,
        bias_lr: float | None = None,
        clip_eps_high: float | None = None,
        plan_prior: float = 0.0,
        facts_per_factor: bool = False,
    ):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}: use 'ppo' or 'grpo'")
        if mode not in MODES:
            raise ValueError(f"unknown policy mode {mode!r}: use {', '.join(MODES)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {temperature}")
        if explore not in EXPLORE:
            raise ValueError(f"unknown exploration {explore!r}: use {', '.join(EXPLORE)}")
        self.explore = explore
        self.algorithm, self.mode = algorithm, mode
        self.epochs, self.clip_eps, self.clip_eps_high = epochs, clip_eps, clip_eps_high
        self.entropy_coef, self.value_coef = entropy_coef, value_coef
        self.recipe = dict(recipe or DEFAULT_RECIPE)
        self.prior = prior_logits(self.recipe, prior_strength)
        self.prior_kl, self.temperature, self.target_kl = prior_kl, temperature, target_kl
        torch.manual_seed(seed)
        self.net = PolicyNet(
            prior=self.prior, context_prior=plan_prior_weights(plan_prior), facts_per_factor=facts_per_factor
        )
        # the trunk (with its heads and value) and the context heads have their own step sizes
        # (trunk_lr, context_lr; None: lr): a few one-hot weights, each seen only by the scenes
        # with that fact, need larger steps than a trunk whose every step moves every scene
        # bias_lr (None: the trunk's): the heads' biases, which start as the prior's logits and
        # hold what the reward says about a choice in every scene
        # with facts_per_factor, a factor that reads plan facts learns them per fact value in its
        # context head; its bias (shared by every scene) stays in the trunk's group
        reads = set(FACTOR_FACTS) if facts_per_factor else set()
        biases = [h.bias for f, h in self.net.heads.items() if f not in reads]
        own = {id(p) for p in [*self.net.context_parameters(), *biases]}
        rest = [p for p in self.net.parameters() if id(p) not in own]
        self.optim = torch.optim.Adam(
            [
                {"params": rest, "lr": trunk_lr or lr},
                {"params": self.net.context_parameters(), "lr": context_lr or lr},
                {"params": biases, "lr": bias_lr or trunk_lr or lr},
            ],
            lr=lr,
        )
        self.version = 0
        self.stats = RunningStats()
        self.history: list[float] = []  # mean reward of each update, for curves

    @classmethod
    def from_settings(cls, s, seed: int = 0) -> "PromptPolicy":
        """From the `policy` settings group."""
        return cls(
            algorithm=s.rl,
            mode=s.mode,
            lr=s.learning_rate,
            epochs=s.ppo_epochs,
            clip_eps=s.clip_eps,
            entropy_coef=s.entropy_coef,
            seed=seed,
            recipe=parse_recipe(s.recipe),
            prior_strength=s.prior_strength,
            prior_kl=s.prior_kl,
            temperature=s.temperature,
            target_kl=s.target_kl,
            context_lr=s.context_lr,
            explore=s.explore,
            trunk_lr=s.trunk_lr,
            bias_lr=s.bias_lr,
            clip_eps_high=s.clip_eps_high,
            plan_prior=s.plan_prior,
            facts_per_factor=s.facts_per_factor,
        )

    # acting -------------------------------------------------------------------------------
    def act(self, state: np.ndarray, seed: int, greedy: bool = False) -> tuple[dict[str, str], float]:
        """An action and its log-probability under the policy. Sampled (at `temperature`) with a
        generator seeded per attempt, so that a resumed run samples the same; `greedy` takes the
        most likely value of each factor. 'random' is uniform, 'template' always the recipe."""
        if self.mode == "template":
            return dict(self.recipe), 0.0
        gen = torch.Generator().manual_seed(int(seed) % (2**63))
        with torch.no_grad():
            logits, _ = self.net(torch.as_tensor(state, dtype=torch.float32)[None])
        # one_factor: an exploring take is the greedy action with one factor set to another
        # value, so its reward against the greedy take's says what that one choice is worth (the
        # benchmark's coordinate search, as exploration); a joint sample changes seven factors at
        # once and three takes cannot tell them apart. The factor is drawn uniformly, its new
        # value from pi_T without the greedy value. Measured and not kept (benchmarks/policy.py,
        # its JSON's `tried`): the factor drawn in proportion to 1 - pi_T(greedy) explored
        # lighting, the costliest factor to get wrong, more often (a fresh policy's films fell
        # from 0.695 to 0.679); drawn in proportion to its runner-up's odds against the greedy
        # value, exp(-(gap of its two largest logits) / T), so that the factors the reward had
        # settled are perturbed less (uniform at the prior: the factor left most in doubt is
        # lighting, again the costliest to explore), and the ordered factors (shot size, locks,
        # motion, negative preset) changed by one step only: on two training seeds, both below
        # uniform after 8 films in chosen and all-take means; the value at temperature 0.5 and a
        # KL to the prior (prior_kl 0.1) fell below it on one seed; the value drawn from pi_T with
        # the greedy value included (settled factors explored less) fell far below it.
        # A frozen policy explores the same way: its extra takes cost little around the greedy
        # action, and the film keeps the best.
        one = None
        if not greedy and self.mode in ("learn", "frozen") and self.explore == "one_factor":
            one = FACTORS[int(torch.randint(len(FACTORS), (1,), generator=gen))]
        action, log_prob = {}, 0.0
        for f in FACTORS:
            lg = torch.zeros_like(logits[f][0]) if self.mode == "random" else logits[f][0]
            if (greedy and self.mode != "random") or (one is not None and f != one):
                idx = int(lg.argmax())
            elif f == one:
                probs = torch.softmax(lg / self.temperature, -1)
                probs[int(lg.argmax())] = 0.0  # another value than the greedy take's
                idx = int(torch.multinomial(probs / probs.sum(), 1, generator=gen))
            else:
                idx = int(torch.multinomial(torch.softmax(lg / self.temperature, -1), 1, generator=gen))
            action[f] = ACTION_FACTORS[f][idx]
            log_prob += float(torch.log_softmax(lg, -1)[idx])
        return action, log_prob

    def greedy(self, state: np.ndarray) -> dict[str, str]:
        with torch.no_grad():
            logits, _ = self.net(torch.as_tensor(state, dtype=torch.float32)[None])
        return {f: ACTION_FACTORS[f][int(logits[f][0].argmax())] for f in FACTORS}

    # learning -----------------------------------------------------------------------------
    def update(self, batch: list[Transition]) -> dict[str, float]:
        """One policy update from a scene's attempts: the algorithm's advantages, then `epochs`
        gradient steps on its loss. Returns the last epoch's info for the report: policy_loss,
        entropy, approx_kl, clip_fraction (and value_loss for PPO)."""
        if self.mode != "learn" or not batch:
            return {}
        states = torch.as_tensor(np.stack([t.state for t in batch]), dtype=torch.float32)
        actions = {f: torch.tensor([ACTION_FACTORS[f].index(t.action[f]) for t in batch]) for f in FACTORS}
        # the policy does not change between a scene's attempts, so the behaviour policy's
        # log-probabilities are the current network's. Two approximations, both bounded by the
        # clip: the greedy first take was not sampled, and enters the ratio as if it had been
        # (pi_old(a|s) of its action, so its ratio starts at 1 and its advantage moves the policy
        # like any take's); exploring takes sampled at a temperature enter with the untempered
        # pi_old, so the update is against the policy, not the exploration distribution. A
        # one-factor take (explore='one_factor') is the same: per factor, pi_old of its value,
        # so its six greedy factors share the greedy take's values and, the group's advantages
        # summing to zero, their gradients cancel (exactly in the first epoch for the context
        # heads, which see the same facts in every take): the credit goes to the changed factor.
        with torch.no_grad():
            old_logits, old_values = self.net(states)
        old_log_probs = ppo.chosen_log_probs(old_logits, actions)
        rewards = torch.tensor([t.reward for t in batch], dtype=torch.float32)
        self.stats.update([t.reward for t in batch])
        if self.algorithm == "ppo":
            adv = ppo.advantages(rewards, old_values, self.stats.mean, self.stats.std)
        else:
            adv = grpo.advantages(rewards)
        info: dict[str, float] = {}
        epochs = 0
        for _ in range(self.epochs):
            logits, values = self.net(states)
            if self.algorithm == "ppo":
                loss, info = ppo.loss(
                    logits,
                    values,
                    actions,
                    old_log_probs,
                    adv,
                    rewards,
                    self.stats.mean,
                    self.clip_eps,
                    self.entropy_coef,
                    self.value_coef,
                    self.clip_eps_high,
                )
            else:
                loss, info = grpo.loss(
                    logits, actions, old_log_probs, adv, self.clip_eps, self.entropy_coef, self.clip_eps_high
                )
            if self.prior_kl > 0:
                kl = kl_to_prior(logits, self.prior).mean()
                loss = loss + self.prior_kl * kl
                info["kl_to_prior"] = float(kl.detach())
            if self.target_kl is not None and info["approx_kl"] > self.target_kl:
                break  # CleanRL's --target-kl: this epoch would move the policy too far from pi_old
            epochs += 1
            self.optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            self.optim.step()
        self.version += 1
        self.history.append(float(rewards.mean()))
        info["epochs"] = epochs
        return info

    # persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "optim": self.optim.state_dict(),
            "version": self.version,
            "algorithm": self.algorithm,
            "stats": [self.stats.count, self.stats.mean, self.stats.m2],
            "history": self.history,
            "factors": {f: list(v) for f, v in ACTION_FACTORS.items()},
            "state_dim": STATE_DIM,
            "recipe": dict(self.recipe),
        }

    def save(self, path: Path) -> Path:
        """Atomic save: a kill mid-write never leaves a broken policy behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        return path

    def load(self, path: Path) -> bool:
        """Load a saved policy; False (and a fresh policy) when none exists or it does not fit.

        weights_only=True: a policy file is tensors and plain data, and unpickling anything else
        could run code (a crafted .pt calling os.system did, with weights_only=False). A file
        that cannot be read or is not a policy of these factors gets one warning and a backup
        beside it, because the run will save its own policy over that path."""
        path = Path(path)
        if not path.exists():
            return False
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, dict) or not {"net", "optim", "version", "stats"} <= data.keys():
                raise ValueError("not a CineRL policy file")
        except Exception as e:  # a corrupt or hostile file must not stop a film, nor run code
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            self._set_aside(path, f"unreadable ({reason})")
            return False
        if (
            data.get("factors") != {f: list(v) for f, v in ACTION_FACTORS.items()}
            or data.get("state_dim") != STATE_DIM
        ):
            self._set_aside(path, "made for other prompt factors")
            return False
        before = copy.deepcopy((self.net.state_dict(), self.optim.state_dict()))
        try:
            version, stats = int(data["version"]), RunningStats(*data["stats"])
            history = [float(x) for x in data.get("history", [])]
            self.net.load_state_dict(data["net"])
            self._load_optimiser(data["optim"], path)
        except Exception as e:
            self.net.load_state_dict(before[0])  # nothing half-loaded survives
            self.optim.load_state_dict(before[1])
            self._set_aside(path, f"does not fit this network ({type(e).__name__})")
            return False
        self.version, self.stats, self.history = version, stats, history
        return True

    def _load_optimiser(self, state, path: Path) -> None:
        """Adam's moments from a policy file, when its parameter groups are this policy's. A file
        saved with another layout (before the heads' biases had their own step size, or with the
        other facts_per_factor, which moves biases between groups) holds this network's weights:
        they are kept and only Adam starts again."""
        groups = state.get("param_groups", []) if isinstance(state, dict) else []
        sizes = [len(g["params"]) for g in self.optim.param_groups]
        if [len(g.get("params", [])) for g in groups] == sizes:
            self.optim.load_state_dict(state)
        else:
            log.info("policy %s: optimiser state of another layout, Adam restarts", path)

    @staticmethod
    def _set_aside(path: Path, why: str) -> Path | None:
        """Copy a policy file we cannot use to <name>.unreadable-<timestamp>.pt before anything
        can overwrite it, and say so once."""
        backup = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
        if backup.exists():
            backup = backup.with_name(f"{backup.stem}-{os.getpid()}{path.suffix}")
        try:
            shutil.copy2(path, backup)
        except OSError as e:
            log.warning("policy %s %s; starting fresh (no backup: %s)", path, why, e.strerror or e)
            return None
        log.warning("policy %s %s; starting fresh, the file is kept as %s", path, why, backup)
        return backup
