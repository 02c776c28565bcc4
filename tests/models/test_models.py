"""One contract for every registered model: fit on a tiny corpus, predict, save, load, same predictions;
and for the networks: shapes, gradients, batch-norm fusion."""

import numpy as np
import pytest
import torch

from timbrescope.errors import ModelError
from timbrescope.inference import Recognizer
from timbrescope.models import create_model, list_models
from timbrescope.models.fusion import fuse_batchnorm
from timbrescope.models.checkpoint import load_checkpoint, save_checkpoint
from timbrescope.train.loop import TrainConfig, train

LABELS = ["piano", "violin", "drum_kit"]
NETWORKS = [name for name in list_models() if not create_model(name, labels=LABELS).fitted_once]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_contract_fit_predict_save_load_same_predictions(name, tiny_corpus, tmp_path, monkeypatch):
    from timbrescope.train import loop

    trained = {}  # the model in memory, as training hands it to save_checkpoint

    def keep(path, model, *args):
        trained["model"] = model
        save_checkpoint(path, model, *args)

    monkeypatch.setattr(loop, "save_checkpoint", keep)
    summary = train(tiny_corpus, tmp_path / "m.ckpt", TrainConfig(model=name, epochs=1, batch_size=8))
    assert summary["epochs_run"] == 1 and summary["train_clips"] == 12 and 0 <= summary["valid_map"] <= 1
    reloaded, _ = load_checkpoint(tmp_path / "m.ckpt")
    model = trained["model"].eval()
    waveform = torch.from_numpy(np.random.default_rng(0).standard_normal((2, model.sample_rate * 5)).astype(np.float32) * 0.1)
    with torch.no_grad():
        for key in ("clip_logits", "frame_logits"):
            torch.testing.assert_close(reloaded(waveform)[key], model(waveform)[key])
    clip = tiny_corpus / "audio" / "test" / "test-000000.flac"
    recognizer = Recognizer(tmp_path / "m.ckpt")
    result = recognizer.identify(clip)
    scores = [item["score"] for item in result.instruments]
    assert len(scores) == len(recognizer.labels) and all(0 <= s <= 1 for s in scores)
    assert len(result.frames) == max(1, round(result.duration / recognizer.hop_seconds))


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_network_can_overfit_a_tiny_batch(name):
    """Four half-second tones with fixed targets are learnt: a network that cannot do this has a bug."""
    torch.manual_seed(0)
    model = create_model(name, labels=LABELS)
    t = np.arange(model.sample_rate // 2) / model.sample_rate
    tones = [0.3 * np.sin(2 * np.pi * hz * t) for hz in (220, 440, 880, 1760)]
    waveform = torch.from_numpy(np.stack(tones).astype(np.float32))
    targets = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        logits = model(waveform)["clip_logits"]
        if model.output_activation == "softmax":
            loss = torch.nn.functional.cross_entropy(logits, targets)
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        predicted = model(waveform)["clip_logits"].argmax(dim=1)
    assert predicted.tolist() == targets.argmax(dim=1).tolist(), f"{name}: final loss {loss.item():.3f}"


@pytest.mark.parametrize("name", NETWORKS)
def test_network_shapes_gradients_and_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, labels=LABELS)
    waveform = torch.randn(2, model.sample_rate * 2) * 0.1
    out = model(waveform)
    frames = out["frame_logits"].shape[1]
    assert out["frame_logits"].shape == (2, frames, 3) and out["clip_logits"].shape == (2, 3)
    assert out["embedding"].shape[0] == 2
    assert frames == (pytest.approx(2.0 / model.hop_seconds, abs=2) if model.frame_level else 1)
    out["clip_logits"].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    model.eval()
    save_checkpoint(tmp_path / "m.ckpt", model, name, [0.5, 0.4, 0.3], [0.2, 0.1, 0.3], {"note": "test"})
    loaded, meta = load_checkpoint(tmp_path / "m.ckpt")
    assert meta["thresholds"] == pytest.approx([0.5, 0.4, 0.3]) and loaded.labels == LABELS
    assert meta["frame_thresholds"] == pytest.approx([0.2, 0.1, 0.3]) and meta["training"] == {"note": "test"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(waveform)["clip_logits"], model(waveform)["clip_logits"])


@pytest.mark.parametrize("name, config", [(name, {}) for name in NETWORKS] + [("timbrenet", {"top_blocks": 1}),
                                                                               ("timbrenet", {"top_blocks": 1, "bottleneck": 8})])
def test_batchnorm_fusion_keeps_outputs(name, config):
    torch.manual_seed(1)
    model = create_model(name, labels=LABELS, **config)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, model.sample_rate) * 0.1)  # move the running statistics away from their defaults
    model.eval()
    waveform = torch.randn(2, model.sample_rate) * 0.1
    with torch.no_grad():
        before = model(waveform)["frame_logits"]
        after = fuse_batchnorm(model)(waveform)["frame_logits"]
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_short_input_still_gives_a_frame():
    model = create_model("timbrenet", labels=LABELS).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 100))
    assert out["frame_logits"].shape[1] >= 1


def test_timbrenet_separable_context_is_lighter_and_fuses():
    full = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64))
    separable = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64), temporal="separable").eval()
    count = lambda m: sum(p.numel() for p in m.temporal.parameters())
    assert count(full) == 2 * 64 * 64 * 3 + 2 * 64 and count(separable) == 128 * 3 + 128 * 64 + 2 * 64
    waveform = torch.randn(1, separable.sample_rate) * 0.1
    with torch.no_grad():
        before = separable(waveform)["frame_logits"]
        torch.testing.assert_close(fuse_batchnorm(separable)(waveform)["frame_logits"], before, rtol=1e-4, atol=1e-4)
    with pytest.raises(ModelError, match="temporal must be"):
        create_model("timbrenet", labels=LABELS, temporal="lstm")


def test_timbrenet_top_blocks_keep_the_shapes_and_add_their_weights():
    plain = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64)).eval()
    deep = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64), top_blocks=2).eval()
    count = lambda m: sum(p.numel() for p in m.blocks.parameters())
    per_block = 64 * 9 + 2 * 64 + 64 * 64 + 2 * 64  # depthwise 3x3, norm, pointwise, norm
    assert count(deep) - count(plain) == 2 * per_block and deep.config["top_blocks"] == 2
    waveform = torch.randn(1, deep.sample_rate) * 0.1
    with torch.no_grad():
        assert deep(waveform)["frame_logits"].shape == plain(waveform)["frame_logits"].shape
    with pytest.raises(ModelError, match="top_blocks must be 0 or more"):
        create_model("timbrenet", labels=LABELS, top_blocks=-1)


def test_timbrenet_bottleneck_narrows_the_top_blocks_mixing_and_keeps_the_shapes():
    full = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64), top_blocks=1).eval()
    narrow = create_model("timbrenet", labels=LABELS, widths=(8, 16, 32, 64), top_blocks=1, bottleneck=16).eval()
    count = lambda m: sum(p.numel() for p in m.blocks.parameters())
    # 64 -> 64 pointwise replaced by 64 -> 16 (norm) -> 64
    assert count(full) - count(narrow) == 64 * 64 - (64 * 16 + 2 * 16 + 16 * 64) and narrow.config["bottleneck"] == 16
    waveform = torch.randn(2, narrow.sample_rate) * 0.1
    with torch.no_grad():
        assert narrow(waveform)["frame_logits"].shape == full(waveform)["frame_logits"].shape
    with pytest.raises(ModelError, match="bottleneck must be 0"):
        create_model("timbrenet", labels=LABELS, top_blocks=1, bottleneck=-2)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelError, match="unknown model 'resnet9000'; known models: adaboost, knn"):
        create_model("resnet9000", labels=LABELS)
    with pytest.raises(ModelError, match="bad configuration"):
        create_model("timbrenet", labels=LABELS, depth=7)


def test_unfitted_classical_model_says_so():
    with pytest.raises(ModelError, match="knn: the pipeline is not fitted yet"):
        create_model("knn", labels=LABELS).forward_features(torch.zeros(1, 120))


def test_checkpoint_of_another_taxonomy_or_not_a_checkpoint_is_refused(tmp_path):
    model = create_model("timbrenet", labels=LABELS)
    save_checkpoint(tmp_path / "m.ckpt", model, "timbrenet", [0.5] * 3, [0.5] * 3, {})
    payload = torch.load(tmp_path / "m.ckpt", weights_only=True)
    payload["taxonomy_version"] = "0"
    torch.save(payload, tmp_path / "old.ckpt")
    with pytest.raises(ModelError, match="trained on taxonomy v0"):
        load_checkpoint(tmp_path / "old.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a timbrescope checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(22050, 1024, 64, 30.0, 11025.0), (16000, 512, 40, 0.0, 8000.0)])
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax):
    import librosa

    from timbrescope.features import mel_filterbank

    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("samples", [110_250, 3_000, 100])
def test_log_mel_equals_a_torch_stft_log_mel(samples):
    """The numpy front-end (used in training and inference) against the same definition in torch."""
    from timbrescope.features import FrontendConfig, log_mel, mel_filterbank

    config = FrontendConfig()
    waveform = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32) * 0.1
    ours = log_mel(waveform, config)
    x = torch.from_numpy(waveform)
    if samples <= config.n_fft // 2:
        x = torch.nn.functional.pad(x, (0, config.n_fft // 2 + 1 - samples))
    spec = torch.stft(x, config.n_fft, config.hop_length, window=torch.hann_window(config.n_fft), center=True,
                      pad_mode="reflect", return_complex=True).abs().square()
    mel = torch.from_numpy(mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax))
    reference = torch.log(mel @ spec + 1e-6).numpy()
    assert ours.shape == reference.shape == (2, 64, max(samples, 513) // 441 + 1) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-3)
    assert np.abs(ours - reference).mean() < 1e-4
