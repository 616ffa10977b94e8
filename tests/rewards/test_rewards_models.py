"""Model-backed components end to end: the packaged EfficientNet-Lite0 weights, and every
configured-path component (CLIP, SigLIP, DINO, LPIPS, I3D, LAION head) on tiny random models
built and saved here, loaded back through the same code a real model folder goes through."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cinerl.rewards import ClipAnalysis, RewardSettings, ScoreContext, Scorer
from cinerl.models.cache import clear_model_cache
from cinerl.core.schema import Clip
from tests.rewards.conftest import flicker_clip, pan_clip

WORDS = "a slow pan across rocky wall red canyon detective runs through the city at night".split()
PROMPT = "a slow pan across the rocky wall"


@pytest.fixture(autouse=True)
def _fresh_models():
    clear_model_cache()
    yield
    clear_model_cache()


def save_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    ).save_pretrained(path)
    return len(vocab)


def tiny_clip(path, kind="clip"):
    """A tiny random CLIP or SigLIP folder: config, weights, tokenizer, preprocessor config."""
    torch.manual_seed(0)
    n = save_tokenizer(path)
    text = dict(
        vocab_size=n,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    if kind == "clip":
        from transformers import CLIPConfig, CLIPModel

        model = CLIPModel(
            CLIPConfig(
                text_config={**text, "eos_token_id": 2, "pad_token_id": 0},
                vision_config=vision,
                projection_dim=16,
            )
        )
    else:
        from transformers import SiglipConfig, SiglipModel

        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    model.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(
        json.dumps({"crop_size": 32, "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    )
    return model.eval()


def test_lite0_packaged_weights_recognise_a_cat():
    skd = pytest.importorskip("skimage.data", reason="scikit-image (test extra) provides the sample photo")
    import cv2

    from cinerl.rewards.backbones.effnet import load_lite0, weights_path

    p = weights_path()
    assert p is not None and p.name == "efficientnet-lite0-57934424.pth"
    fused, plain = load_lite0(p, "cpu"), load_lite0(p, "cpu", fuse=False)
    img = torch.from_numpy(cv2.resize(skd.chelsea(), (224, 224))[None])
    with torch.inference_mode():
        a, b = fused.logits(fused.preprocess(img)), plain.logits(plain.preprocess(img))
    assert torch.allclose(a, b, atol=1e-3)  # folding batch norms changes nothing
    assert int(a.argmax()) in range(281, 286)  # ImageNet 281-285: tabby .. Egyptian cat


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_clip_alignment_on_a_tiny_model_matches_its_formula(tmp_path, kind):
    model = tiny_clip(tmp_path, kind)
    cfg = RewardSettings(clip_model_path=str(tmp_path), device="cpu")
    clip = pan_clip(t=12, h=64, w=96)
    r = (
        Scorer(components=["clip_alignment", "subject_consistency"], config=cfg)
        .score(clip, ScoreContext(prompt=PROMPT))
        .components
    )
    c = r["clip_alignment"]
    assert c.status == "ok", c.reason
    assert c.raw["model_type"] == kind
    # recompute the per-frame score straight from the saved model
    from cinerl.rewards.backbones.clip import clip_bundle, image_embeddings, text_embeddings

    bundle = clip_bundle(cfg)
    a = ClipAnalysis(clip, config=cfg)
    idx = a.sample_indices(8)
    cos = (
        image_embeddings(bundle, [a.frames[i] for i in idx]) @ text_embeddings(bundle, [PROMPT]).T
    ).squeeze(1)
    if kind == "clip":
        want = torch.clamp(2.5 * torch.clamp(cos, min=0), max=1).mean()
    else:
        want = torch.sigmoid(cos * model.logit_scale.exp() + model.logit_bias).mean()
    assert c.value == pytest.approx(float(want), abs=1e-5)
    # the same folder's vision tower becomes the image-feature backbone
    assert r["subject_consistency"].raw["backbone"].startswith("clip-vision:")


def test_dino_backbone_feeds_subject_location_and_novelty(tmp_path, synth):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(tmp_path)
    cfg = RewardSettings(dino_model_path=str(tmp_path), device="cpu")
    b = synth.bible()
    ref = synth.palette_clip([synth.COLORS[n] for n in synth.ON_PALETTE], t=1).frames[0]
    scorer = Scorer(components=["subject_consistency", "location_features", "novelty_after_k"], config=cfg)
    steady = scorer.score(
        pan_clip(t=48, h=90, w=160, speed=0.0), ScoreContext(scene=b.scenes[0], bible=b, location_ref=ref)
    ).components
    for name in ("subject_consistency", "location_features", "novelty_after_k"):
        assert steady[name].status == "ok", (name, steady[name].reason)
        assert steady[name].raw["backbone"] == f"dino:{tmp_path}"
    assert steady["subject_consistency"].value == pytest.approx(1.0, abs=1e-4)  # a still shot
    assert steady["novelty_after_k"].value == pytest.approx(0.0, abs=1e-3)


def test_t_lpips_from_a_state_dict_file_and_from_a_folder(tmp_path):
    from cinerl.rewards.backbones.lpips import CONV_INDEX, SLICE_OF_CONV, Lpips

    torch.manual_seed(0)
    net = Lpips()
    with torch.no_grad():  # lpips' lin layers are non-negative
        for i in range(5):
            getattr(net, f"lin{i}").model[1].weight.abs_()
    torch.save(net.state_dict(), tmp_path / "lpips_alex.pth")
    folder = tmp_path / "parts"
    folder.mkdir()
    sd = net.state_dict()
    torch.save(
        {
            f"features.{ci}.{p}": sd[f"net.slice{s}.{ci}.{p}"]
            for ci, s in zip(CONV_INDEX, SLICE_OF_CONV)
            for p in ("weight", "bias")
        },
        folder / "alexnet.pth",
    )
    torch.save({k: v for k, v in sd.items() if k.startswith("lin")}, folder / "alex.pth")
    clips = {
        "pan": pan_clip(t=16, h=90, w=160),
        "flicker": flicker_clip(t=16, h=90, w=160, amount=0.2),
        "still": flicker_clip(t=16, h=90, w=160, amount=0.0),
    }
    res = {}
    for src in (tmp_path / "lpips_alex.pth", folder):
        scorer = Scorer(
            components=["warp_consistency"], config=RewardSettings(lpips_path=str(src), device="cpu")
        )
        res[src.name] = {k: scorer.score(c).components["warp_consistency"] for k, c in clips.items()}
    a, b = res["lpips_alex.pth"], res["parts"]
    assert all(c.status == "ok" and c.raw["method"] == "t-lpips" for c in a.values())
    assert a["still"].raw["mean_lpips"] == pytest.approx(0.0, abs=1e-6) and a["still"].value == pytest.approx(
        1.0
    )
    assert a["flicker"].raw["mean_lpips"] > a["pan"].raw["mean_lpips"]
    for k in clips:  # both layouts load the same network
        assert b[k].raw["mean_lpips"] == pytest.approx(a[k].raw["mean_lpips"], rel=1e-5, abs=1e-7)


def test_bad_lpips_file_is_unavailable_with_the_reason(tmp_path):
    torch.save({"something": torch.zeros(3)}, tmp_path / "bad.pth")
    c = (
        Scorer(components=["warp_consistency"], config=RewardSettings(lpips_path=str(tmp_path / "bad.pth")))
        .score(pan_clip(t=4, h=64, w=96))
        .components["warp_consistency"]
    )
    assert c.status == "unavailable" and "not an LPIPS AlexNet state dict" in c.reason


class TinyI3D(torch.nn.Module):
    """An I3D-shaped stand-in: 3D convolutions over (B, 3, T, H, W) -> pooled features."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3))
        self.c2 = torch.nn.Conv3d(8, 16, 3, stride=2, padding=1)

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = True
    ) -> torch.Tensor:
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        return y.mean(dim=(2, 3, 4))


def test_fvd_lite_with_a_torchscript_i3d_and_a_reference_set(tmp_path):
    torch.manual_seed(0)
    torch.jit.script(TinyI3D().eval()).save(str(tmp_path / "i3d.pt"))
    from cinerl.rewards.components.fvd import SIZE, WINDOW, i3d_features
    from cinerl.rewards.backbones.preprocess import square_batch

    model = torch.jit.load(str(tmp_path / "i3d.pt"))
    feats = []
    for seed in range(4):  # reference set: windows of clean pans of several textures
        a = ClipAnalysis(pan_clip(t=40, h=90, w=160, seed=seed))
        fr = square_batch(list(a.frames), SIZE, (0.5,) * 3, (0.5,) * 3)
        vids = torch.stack([fr[s : s + WINDOW] for s in (0, 8, 16, 24)]).permute(0, 2, 1, 3, 4)
        feats.append(i3d_features(model, vids, "cpu"))
    np.savez(tmp_path / "ref.npz", features=np.concatenate(feats))
    cfg = RewardSettings(
        i3d_path=str(tmp_path / "i3d.pt"), fvd_reference_path=str(tmp_path / "ref.npz"), device="cpu"
    )
    scorer = Scorer(components=["fvd_lite"], config=cfg)
    clean = scorer.score(pan_clip(t=40, h=90, w=160, seed=7)).components["fvd_lite"]
    noise = Clip(frames=np.random.default_rng(0).integers(0, 256, (40, 90, 160, 3), dtype=np.uint8), fps=24)
    bad = scorer.score(noise).components["fvd_lite"]
    assert clean.status == bad.status == "ok"
    assert clean.raw["feature_dim"] == 16 and len(clean.raw["windows"]) == 8
    assert clean.value > bad.value and clean.raw["fd"] < bad.raw["fd"]
    short = scorer.score(pan_clip(t=8, h=90, w=160)).components["fvd_lite"]
    assert short.status == "not_applicable"


def test_aesthetic_head_on_tiny_clip_embeddings(tmp_path):
    tiny_clip(tmp_path / "clip", "clip")
    torch.manual_seed(1)
    layers = [torch.nn.Linear(16, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1)]
    head = torch.nn.Sequential(*layers)
    torch.save({f"layers.{k}": v for k, v in head.state_dict().items()}, tmp_path / "head.pth")
    cfg = RewardSettings(
        clip_model_path=str(tmp_path / "clip"), aesthetic_head_path=str(tmp_path / "head.pth"), device="cpu"
    )
    clip = pan_clip(t=8, h=64, w=96)
    c = Scorer(components=["aesthetic"], config=cfg).score(clip).components["aesthetic"]
    assert c.status == "ok", c.reason
    from cinerl.rewards.backbones.clip import clip_bundle, image_embeddings

    a = ClipAnalysis(clip, config=cfg)
    emb = image_embeddings(clip_bundle(cfg), [a.frames[i] for i in a.sample_indices(4)])
    with torch.no_grad():
        want = float(head.eval()(emb).mean())
    assert c.raw["rating_mean"] == pytest.approx(want, abs=1e-5)
    assert c.value == pytest.approx(min(1, max(0, (want - 1) / 9)))
    wrong = RewardSettings(
        clip_model_path=str(tmp_path / "clip"), aesthetic_head_path=str(tmp_path / "head.pth")
    )
    torch.save(
        {"layers.0.weight": torch.zeros(1, 32), "layers.0.bias": torch.zeros(1)}, tmp_path / "head.pth"
    )
    clear_model_cache()
    c = Scorer(components=["aesthetic"], config=wrong).score(clip).components["aesthetic"]
    assert c.status == "unavailable" and "expects 32-D" in c.reason


def tiny_captioner_and_cross_encoder(tmp_path):
    """A tiny random BLIP captioner and a tiny BERT cross-encoder, saved as local folders."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS])}
    cap, ce = tmp_path / "captioner", tmp_path / "cross_encoder"
    tok = BertTokenizer(vocab=vocab)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok
    ).save_pretrained(cap)
    torch.manual_seed(0)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    blip = BlipForConditionalGeneration(
        BlipConfig(
            text_config=dict(
                vocab_size=len(vocab),
                encoder_hidden_size=32,
                bos_token_id=5,
                pad_token_id=0,
                sep_token_id=3,
                eos_token_id=3,
                max_position_embeddings=40,
                **small,
            ),
            vision_config=dict(image_size=32, patch_size=8, **small),
            projection_dim=16,
        )
    )
    with torch.no_grad():  # a trained captioner emits words: keep the random one off special tokens
        blip.text_decoder.cls.predictions.bias[:6] = -1e4
    blip.save_pretrained(cap)
    BertForSequenceClassification(BertConfig(vocab_size=len(vocab), num_labels=1, **small)).save_pretrained(
        ce
    )
    BertTokenizer(vocab=vocab).save_pretrained(ce)
    return cap, ce


def test_caption_consistency_with_a_local_captioner_and_cross_encoder(tmp_path):
    """Captions come from the configured captioner on the keyframes; agreement from the configured
    cross-encoder (sigmoid of its logit); the value is their mean."""
    from sentence_transformers import CrossEncoder
    from transformers import BlipForConditionalGeneration, BlipProcessor

    cap, ce = tiny_captioner_and_cross_encoder(tmp_path)
    clip = pan_clip(t=12, h=96, w=160)
    cfg = RewardSettings(device="cpu", captioner_path=str(cap), cross_encoder_path=str(ce))
    r = Scorer(components=["caption_consistency"], config=cfg).score(clip, ScoreContext(prompt=PROMPT))
    c = r.components["caption_consistency"]
    assert c.status == "ok", c.reason
    assert c.raw["captions_from"] == f"captioner:{cap}" and c.raw["agreement"] == f"cross-encoder:{ce}"

    analysis = ClipAnalysis(clip)
    idx, frames = analysis.detail_frames(3, 512)
    processor, model = BlipProcessor.from_pretrained(cap), BlipForConditionalGeneration.from_pretrained(cap)
    with torch.no_grad():
        out = model.generate(
            **processor(images=list(frames), return_tensors="pt"), max_new_tokens=30, do_sample=False
        )
    captions = [s.strip() for s in processor.batch_decode(out, skip_special_tokens=True)]
    assert c.raw["frames"] == [int(i) for i in idx] and c.raw["captions"] == captions
    assert all(set(s.split()) <= set(WORDS) and s for s in captions)
    logits = np.asarray(CrossEncoder(str(ce), device="cpu").predict([(PROMPT, s) for s in captions])).reshape(
        -1
    )
    expect = 1.0 / (1.0 + np.exp(-logits)) if logits.min() < 0 or logits.max() > 1 else logits
    assert c.raw["caption_scores"] == pytest.approx(expect, abs=1e-4)
    assert c.value == pytest.approx(float(np.mean(expect)), abs=1e-6)
