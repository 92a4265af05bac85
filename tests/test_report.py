"""The demo report from fake inputs."""

from gqn.eval.evaluate import METHODS
from gqn.viz.demo_report import SECTIONS, ReportInputs, write_report


def fake_result(ks=(1, 2, 3)):
    rows = []
    for k in ks:
        methods = {
            m: {"mse": 0.01 * (i + 1), "psnr": 20.0 - i, "ssim": 0.8 - 0.1 * i, "ms_ssim": None}
            for i, m in enumerate(METHODS)
        }
        rows.append(
            {
                "k": k,
                "nll_nats": 1000.0,
                "kl_nats": 5.0,
                "nll_bits_per_dim": 0.5,
                "kl_bits_per_dim": 0.002,
                "methods": methods,
            }
        )
    return {
        "num_scenes": 10,
        "views": 4,
        "image_size": 32,
        "num_samples": 4,
        "sigma": 0.7,
        "methods": list(METHODS),
        "ms_ssim_available": False,
        "rows": rows,
    }


def test_report_has_every_section_and_relative_links(tmp_path):
    fig = tmp_path / "figures"
    inputs = ReportInputs(
        context_png=fig / "context.png",
        comparison_png=fig / "comparison.png",
        samples_png=fig / "samples.png",
        orbit_gif=fig / "orbit.gif",
        metrics_png=tmp_path / "eval" / "metrics_vs_k.png",
        loss_png=fig / "loss.png",
        eval_result=fake_result(),
        stage_seconds={"data": 10.0, "train": 300.0},
        reused=["data"],
        config={"model": "tiny"},
        machine={"cpu": "test cpu", "cores": 2},
    )
    text = write_report(inputs, tmp_path / "report.md").read_text()
    for section in SECTIONS:
        assert section in text
    assert "](figures/orbit.gif)" in text and "](eval/metrics_vs_k.png)" in text
    assert "| data (reused) | 10 s |" in text and "| train | 5.0 min |" in text
    assert "| total | 5.2 min |" in text
    assert text.count("| 1 | nearest_view |") == 1 and text.count("| nearest_view |") == 2
    nearest = METHODS.index("nearest_view")  # fake SSIM 0.8 - 0.1 * index: the best baseline
    assert f"best baseline (nearest_view) {0.8 - 0.1 * nearest:.3f}" in text
    assert f"best baseline (nearest_view) {20.0 - nearest:.2f} dB" in text
    control = METHODS.index("prior_mean_other_pose")
    assert f"another view's pose (control): {20.0 - control:.2f} dB" in text
    assert "- cpu: test cpu" in text


def test_summary_picks_the_best_baseline_per_metric():
    from gqn.viz.demo_report import summary_lines

    result = fake_result()
    result["rows"][0]["methods"]["mean_image"]["psnr"] = 30.0  # best on PSNR, not on SSIM
    first = summary_lines(result)[0]
    assert "best baseline (mean_image) 30.00 dB" in first
    assert "best baseline (nearest_view) " in first.split("; PSNR")[0]
