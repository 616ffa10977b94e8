"""Reward-suite plumbing: the scoring context, the component registry and shared colour helpers.

A reward component is a function ``measure(analysis, ctx) -> ComponentScore`` (or a class with a
``measure`` method) decorated with ``@register(name=..., group=...)``. Adding a component is one
module plus one import line in ``cinerl/rewards/__init__.py``; the ``Scorer`` picks up everything
registered. Components build their verdict with :func:`ok`, :func:`unavailable` and
:func:`not_applicable`; :func:`run_component` stamps name and group, keeps values in [0, 1] and
turns any exception into an ``unavailable`` verdict so one broken metric never stops scoring.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable


from cinerl.core.schema import ComponentScore
from cinerl.core.settings import RewardSettings
from cinerl.rewards.config import missing
from cinerl.rewards.core.context import ScoreContext

if TYPE_CHECKING:  # pragma: no cover
    from cinerl.rewards.core.analysis import ClipAnalysis

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# verdict helpers
# --------------------------------------------------------------------------------------------


def ok(value: float, raw: dict | None = None, **more_raw: Any) -> ComponentScore:
    """A measured score in [0, 1] with the raw measurement(s) it came from."""
    return ComponentScore(name="", group="", status="ok", value=float(value), raw={**(raw or {}), **more_raw})


def unavailable(reason: str, raw: dict | None = None) -> ComponentScore:
    """The component applies but cannot run here (missing model, unusable input...)."""
    return ComponentScore(name="", group="", status="unavailable", value=None, raw=raw or {}, reason=reason)


def not_applicable(reason: str, raw: dict | None = None) -> ComponentScore:
    """The component does not apply to this clip (first scene, no characters...)."""
    return ComponentScore(
        name="", group="", status="not_applicable", value=None, raw=raw or {}, reason=reason
    )


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

Measure = Callable[["ClipAnalysis", ScoreContext], ComponentScore]


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component."""

    name: str
    group: str
    measure: Measure
    doc: str = ""
    origin: str = ""  # "module.qualname" of the decorated object, to allow re-import
    requires: tuple[str, ...] = ()  # rewards settings that must be set for it to run


_REGISTRY: "OrderedDict[str, ComponentSpec]" = OrderedDict()


def register(name: str, group: str, requires: tuple[str, ...] = ()) -> Callable[[Any], Any]:
    """Register a reward component under ``name`` in score group ``group``.

    ``requires`` names the `rewards` settings (model paths, endpoints) without which it cannot
    run: the scorer then records it ``unavailable`` with the missing setting, without calling it,
    and `cinerl config` lists what each component needs.

    Decorates either a function ``f(analysis, ctx) -> ComponentScore`` or a class whose instances
    (built with no arguments) have ``measure(analysis, ctx) -> ComponentScore``. Returns the
    decorated object unchanged.
    """
    if not name or not isinstance(name, str):
        raise ValueError("component name must be a non-empty string")
    if not group or not isinstance(group, str):
        raise ValueError("component group must be a non-empty string")
    unknown = [r for r in requires if r not in RewardSettings.model_fields]
    if unknown:
        raise ValueError(f"component {name!r} requires unknown rewards settings {unknown}")

    def deco(obj: Any) -> Any:
        origin = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        if isinstance(obj, type):
            inst = obj()
            if not callable(getattr(inst, "measure", None)):
                raise TypeError(f"component class {obj.__name__} needs a measure(analysis, ctx) method")
            measure = inst.measure
        elif callable(obj):
            measure = obj
        else:
            raise TypeError("@register decorates a function or a class")
        old = _REGISTRY.get(name)
        if old is not None and old.origin != origin:
            raise ValueError(f"reward component {name!r} is already registered by {old.origin}")
        _REGISTRY[name] = ComponentSpec(
            name=name,
            group=group,
            measure=measure,
            doc=(obj.__doc__ or "").strip(),
            origin=origin,
            requires=tuple(requires),
        )
        return obj

    return deco


def unregister(name: str) -> None:
    """Remove a component (mainly for tests that register temporary components)."""
    _REGISTRY.pop(name, None)


def registered_components() -> dict[str, ComponentSpec]:
    """All registered components by name, in registration order (a copy)."""
    return dict(_REGISTRY)


def registered_groups() -> list[str]:
    """The score groups that registered components belong to, in first-seen order."""
    return list(dict.fromkeys(s.group for s in _REGISTRY.values()))


def unmet_requirements(spec: ComponentSpec, config: RewardSettings) -> list[str]:
    """The settings `spec` requires that `config` leaves unset."""
    return [r for r in spec.requires if not getattr(config, r, None)]


def component_needs(config: RewardSettings) -> list[dict]:
    """For `cinerl config`: each component, what it requires and whether that is configured."""
    rows = []
    for spec in _REGISTRY.values():
        unset = unmet_requirements(spec, config)
        rows.append(
            {
                "name": spec.name,
                "group": spec.group,
                "requires": list(spec.requires),
                "configured": not unset,
                "missing": unset,
            }
        )
    return rows


def run_component(spec: ComponentSpec, analysis: "ClipAnalysis", ctx: ScoreContext) -> ComponentScore:
    """Run one component safely: never raises; stamps name and group; keeps ok values in [0, 1]."""
    unset = unmet_requirements(spec, analysis.config)
    if unset:
        return ComponentScore(
            name=spec.name,
            group=spec.group,
            status="unavailable",
            reason="; ".join(missing(r) for r in unset),
        )
    try:
        res = spec.measure(analysis, ctx)
        if not isinstance(res, ComponentScore):
            raise TypeError(f"component returned {type(res).__name__}, not ComponentScore")
    except Exception as exc:  # a broken metric must not stop scoring
        log.warning(
            "reward component %s failed: %s: %s",
            spec.name,
            type(exc).__name__,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return ComponentScore(
            name=spec.name,
            group=spec.group,
            status="unavailable",
            reason=f"error: {type(exc).__name__}: {exc}",
        )
    upd: dict[str, Any] = {"name": spec.name, "group": spec.group}
    if res.status == "ok":
        v = res.value
        if v is None or not math.isfinite(v):
            return ComponentScore(
                name=spec.name,
                group=spec.group,
                status="unavailable",
                raw=res.raw,
                reason=f"component returned a non-finite value ({v!r})",
            )
        upd["value"] = float(min(1.0, max(0.0, v)))
    else:
        upd["value"] = None
        if not res.reason:
            upd["reason"] = f"component reported {res.status} without a reason"
    return res.model_copy(update=upd)
