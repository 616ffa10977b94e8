"""Does context matter? On previz with the offline reward suite, the best (lighting, motion, shot
size) of four scenes of different kinds, against the best single fixed action over all four.

Scenes (hand-built bibles, so the benchmark does not depend on the planner):

* night_chase: a night chase through a city street, two characters;
* candle_vigil: a silent vigil by candlelight in an 1850s chapel, one character;
* market_crowd: four characters bargaining in a market by day;
* golden_lone: one figure watching the sun go down at dusk.

For each scene every value of lighting x motion x shot_size (6 x 4 x 4 = 96 actions) is composed
with the other factors at the composer's default recipe (``core.vocabulary.DEFAULT_RECIPE``:
static camera, full identity and location locks, full negative preset), rendered on previz and
scored with the offline suite (``Scorer()`` from the environment's settings) in the context
`cinerl make` gives: the scene, the bible, character and location reference images rendered on
previz at the same size. Every action is rendered with ``--seeds`` seeds and the reward averaged.

Prints each scene's best action and reward, the best fixed action (highest mean over the four
scenes) and its reward on each scene, and the mean of the per-scene best against the fixed one;
then the same ranking of the same takes with the groups of ``--drop`` weighted 0 (by default the
character and location colour matches, which compare the take's colours with daylight reference
images and so punish every light but daylight: what the ranking would be with light-invariant
versions of them). Writes JSON (default benchmarks/results/context.json).

    python benchmarks/context.py [--width 160 --height 96 --frames 16 --fps 8 --seeds 1]
        [--drop character_consistency,location_consistency] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

FALLBACK_DEFAULTS = {
    "camera_move": "static",
    "identity_lock": "full",
    "location_lock": "full",
    "negative_preset": "full",
}


def scenes() -> dict:
    """name -> StoryBible with one scene (the scene to shoot)."""
    from cinerl.core.schema import Character, Location, NamedColor, Scene, StoryBible
    from cinerl.core.vocabulary import COLORS

    def nc(n: str) -> NamedColor:
        return NamedColor(name=n, rgb=COLORS[n])

    def person(cid, name, gender, age, wardrobe, garments, hair) -> Character:
        return Character(
            id=cid,
            name=name,
            gender=gender,
            age=age,
            wardrobe=[nc(w) for w in wardrobe],
            garments=garments,
            hair=nc(hair),
        )

    def bible(title, chars, loc, scene, era=None) -> StoryBible:
        return StoryBible(
            seed_prompt=title,
            title=title,
            logline=title,
            characters=chars,
            locations=[loc],
            scenes=[scene],
            era=era,
        )

    ana = person("ana", "Ana", "woman", 30, ["crimson", "charcoal"], ["coat", "trousers"], "black")
    ben = person("ben", "Ben", "man", 35, ["mustard", "navy"], ["jacket", "trousers"], "chestnut")
    cy = person("cy", "Cy", "man", 50, ["emerald", "khaki"], ["shirt", "trousers"], "grey")
    di = person("di", "Di", "woman", 22, ["rose", "ivory"], ["dress", "shawl"], "blonde")
    ed = person("ed", "Ed", "man", 70, ["ochre", "walnut"], ["coat", "trousers"], "ash grey")
    city = Location(
        id="canal_street",
        name="Canal Street",
        scenery_type="city",
        palette=[nc("slate grey"), nc("charcoal"), nc("steel blue")],
        visual_description="wet asphalt and shop fronts",
    )
    chapel = Location(
        id="chapel",
        name="the Old Chapel",
        scenery_type="interior",
        palette=[nc("walnut"), nc("cream"), nc("burgundy")],
        visual_description="stone walls and rows of candles",
    )
    market = Location(
        id="market",
        name="the Spice Market",
        scenery_type="meadow",
        palette=[nc("sand"), nc("terracotta"), nc("sage")],
        visual_description="striped awnings over crowded stalls",
    )
    hill = Location(
        id="hill",
        name="the Long Ridge",
        scenery_type="meadow",
        palette=[nc("moss green"), nc("olive"), nc("sky blue")],
        visual_description="tall grass under an open sky",
    )

    def scene(title, beat, ids, loc, action, tod) -> Scene:
        return Scene(
            index=0,
            title=title,
            beat=beat,
            duration_s=4,
            character_ids=ids,
            location_id=loc,
            action=action,
            time_of_day=tod,
        )

    return {
        "night_chase": bible(
            "A night chase",
            [ana, ben],
            city,
            scene(
                "The chase",
                "turn",
                ["ana", "ben"],
                "canal_street",
                "Ana chases Ben through the street",
                "night",
            ),
        ),
        "candle_vigil": bible(
            "A vigil",
            [ed],
            chapel,
            scene("The vigil", "end", ["ed"], "chapel", "Ed keeps a silent vigil by candlelight", "night"),
            era="the 1850s",
        ),
        "market_crowd": bible(
            "Market day",
            [ana, ben, cy, di],
            market,
            scene(
                "Market day",
                "beginning",
                ["ana", "ben", "cy", "di"],
                "market",
                "Ana, Ben, Cy and Di bargain and stroll between the stalls",
                "day",
            ),
        ),
        "golden_lone": bible(
            "Alone on the ridge",
            [di],
            hill,
            scene("Alone", "end", ["di"], "hill", "Di stands alone and watches the sun go down", "dusk"),
        ),
    }


def default_action() -> dict[str, str]:
    """The factors held fixed: the composer's default recipe (core.vocabulary.DEFAULT_RECIPE)
    without the three that are varied."""
    from cinerl.core import vocabulary

    recipe = getattr(vocabulary, "DEFAULT_RECIPE", None) or FALLBACK_DEFAULTS
    return {k: v for k, v in recipe.items() if k not in ("lighting", "motion", "shot_size")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=1, help="seeds per action (rewards averaged)")
    ap.add_argument(
        "--drop",
        default="character_consistency,location_consistency",
        help="also rank the same takes with these groups weighted 0 ('' for none): the colour "
        "matches against daylight references, which punish every other light",
    )
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "context.json")
    args = ap.parse_args()

    from tqdm.auto import tqdm

    from cinerl.core.schema import ClipRequest
    from cinerl.core.vocabulary import ACTION_FACTORS
    from cinerl.generation.registry import get_image_backend, get_video_backend
    from cinerl.prompting.composer import compose, reference_prompt_character, reference_prompt_location
    from cinerl.rewards import ScoreContext, Scorer, combine

    video, image = get_video_backend("previz"), get_image_backend("previz")
    scorer = Scorer()
    base = default_action()
    grid = list(
        itertools.product(ACTION_FACTORS["lighting"], ACTION_FACTORS["motion"], ACTION_FACTORS["shot_size"])
    )
    w, h = args.width, args.height
    rewards: dict[str, dict[tuple[str, str, str], float]] = {}
    takes: dict[str, dict[tuple[str, str, str], list]] = {}  # the component scores of every take
    parts: dict[str, dict[tuple[str, str, str], dict]] = {}
    t0 = time.perf_counter()
    bibles = scenes()
    bar = tqdm(total=len(bibles) * len(grid) * args.seeds, desc="render + score", unit="take")
    for name, bible in bibles.items():
        sc = bible.scenes[0]
        refs = {c.id: image.generate_image(reference_prompt_character(c), w, h, 0) for c in bible.characters}
        loc_ref = image.generate_image(reference_prompt_location(bible.location(sc.location_id)), w, h, 0)
        ctx = ScoreContext(
            scene=sc,
            bible=bible,
            character_refs={cid: refs[cid] for cid in sc.character_ids},
            location_ref=loc_ref,
        )
        rewards[name], parts[name], takes[name] = {}, {}, {}
        for light, motion, shot in grid:
            action = {**base, "lighting": light, "motion": motion, "shot_size": shot}
            prompt, negative = compose(sc, bible, action)
            totals, comps = [], {}
            for seed in range(args.seeds):
                req = ClipRequest(
                    prompt=prompt,
                    negative_prompt=negative,
                    width=w,
                    height=h,
                    num_frames=args.frames,
                    fps=args.fps,
                    seed=seed,
                )
                r = scorer.score(video.generate(req), ctx)
                totals.append(r.total)
                takes[name].setdefault((light, motion, shot), []).append(r.components)
                for cname in ("scene_light", "scene_motion", "scene_cast"):
                    comps.setdefault(cname, []).append(r.components[cname].value)
                bar.update()
            rewards[name][(light, motion, shot)] = sum(totals) / len(totals)
            parts[name][(light, motion, shot)] = {
                k: (None if None in v else round(sum(v) / len(v), 4)) for k, v in comps.items()
            }
    bar.close()
    seconds = time.perf_counter() - t0
    print(
        f"\n{len(bibles)} scenes x {len(grid)} actions x {args.seeds} seed(s), {w}x{h}, "
        f"{args.frames} frames at {args.fps} fps, {seconds:.0f} s; other factors: {base}"
    )

    names = list(bibles)
    out = {
        "settings": {
            "width": w,
            "height": h,
            "frames": args.frames,
            "fps": args.fps,
            "seeds": args.seeds,
            "other_factors": base,
            "seconds": round(seconds, 1),
            "weights": scorer.weights,
        },
        "suite": report(names, grid, rewards, parts, f"offline suite, weights {scorer.weights}"),
    }
    if args.drop:
        drop = [g.strip() for g in args.drop.split(",") if g.strip()]
        weights = {g: (0.0 if g in drop else v) for g, v in scorer.weights.items()}
        again = {
            n: {a: sum(combine(c, weights).total for c in runs) / len(runs) for a, runs in takes[n].items()}
            for n in names
        }
        out["without"] = {
            "groups": drop,
            **report(names, grid, again, parts, f"the same takes without {drop}"),
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


def report(names, grid, rewards, parts, title: str) -> dict:
    """Print the per-scene best against the best fixed action; return the JSON section."""
    best = {n: max(rewards[n], key=rewards[n].get) for n in names}
    fixed = max(grid, key=lambda a: sum(rewards[n][a] for n in names))
    per_scene_mean = sum(rewards[n][best[n]] for n in names) / len(names)
    fixed_mean = sum(rewards[n][fixed] for n in names) / len(names)
    print(f"\n{title}")
    print(f"{'scene':14s} {'best (lighting, motion, shot)':42s} {'reward':>7s} {'fixed':>7s} {'gain':>7s}")
    for n in names:
        b = best[n]
        print(
            f"{n:14s} {', '.join(b):42s} {rewards[n][b]:7.3f} {rewards[n][fixed]:7.3f} "
            f"{rewards[n][b] - rewards[n][fixed]:+7.3f}"
        )
    distinct = len({best[n] for n in names})
    print(f"best fixed action over all four: {', '.join(fixed)}")
    print(
        f"mean reward: per-scene best {per_scene_mean:.3f}, best fixed {fixed_mean:.3f}, "
        f"gain {per_scene_mean - fixed_mean:+.3f}; distinct best actions: {distinct} of {len(names)}"
    )
    return {
        "scenes": {
            n: {
                "best_action": dict(zip(("lighting", "motion", "shot_size"), best[n])),
                "best_reward": round(rewards[n][best[n]], 4),
                "best_scene_plan": parts[n][best[n]],
                "fixed_reward": round(rewards[n][fixed], 4),
                "fixed_scene_plan": parts[n][fixed],
                "all": [
                    {
                        "lighting": a[0],
                        "motion": a[1],
                        "shot_size": a[2],
                        "reward": round(v, 4),
                        **parts[n][a],
                    }
                    for a, v in sorted(rewards[n].items(), key=lambda kv: -kv[1])
                ],
            }
            for n in names
        },
        "best_fixed_action": dict(zip(("lighting", "motion", "shot_size"), fixed)),
        "mean_per_scene_best": round(per_scene_mean, 4),
        "mean_best_fixed": round(fixed_mean, 4),
        "gain": round(per_scene_mean - fixed_mean, 4),
        "distinct_best_actions": distinct,
    }


if __name__ == "__main__":
    main()
