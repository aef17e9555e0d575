"""``trace plot --png``: a picture of the timeline from a real trace."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import matplotlib  # noqa: F401  (a test dependency: the PNG is really rendered)
import pytest

from tests.support.traces import mimic_trace, scenario_trace
from wddmemu._trace_plot import COLOURS, PlotUnavailable, _Bins, colour, plot_png
from wddmemu._trace_read import TraceFormatError


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _pixels(path: Path) -> Any:
    from matplotlib.image import imread

    return imread(str(path))


def _has_colour(img: Any, hex_colour: str, tol: float = 0.02) -> bool:
    import numpy as np

    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(img[..., :3] - rgb).max(axis=-1) < tol).any())


def test_png_from_a_scenario_trace(tmp_path: Path) -> None:
    trace = scenario_trace(tmp_path / "t.jsonl", "reentrant-lockasync", ddi_version=0xB)
    out = tmp_path / "t.png"
    info = plot_png(trace, out)
    w, h = _png_size(out)
    assert w == 1600 and 300 <= h <= 2000
    assert info.events > 0
    img = _pixels(out)
    # the LockAsync colour is in the picture (the app thread's reentrant LockAsync calls)
    assert _has_colour(img, COLOURS["LockAsync"])


def test_png_from_the_mimic_shows_dma_and_violations(tmp_path: Path) -> None:
    trace = mimic_trace(tmp_path / "m.jsonl")
    for mode in ("virtual", "steps"):
        out = tmp_path / f"m-{mode}.png"
        plot_png(trace, out, time=mode, width=12)
        assert _png_size(out)[0] == 1200
        img = _pixels(out)
        for name in ("DMA buffer", "DrawPrimitive", "LockAsync", "pfnRenderCb"):
            assert _has_colour(img, COLOURS[name]), (mode, name)
        assert _has_colour(img, "#e31a1c")  # the violation marker


def test_bins_keep_the_dominant_item_and_its_nesting() -> None:
    b = _Bins(0, 1000, 10)  # 10 bins of 100 ns
    b.slice(1, 0, "Present", "ddi", 0, 1000, None, None)
    b.slice(1, 1, "pfnRenderCb", "cb", 100, 50, None, ("Present", "ddi"))
    b.slice(1, 1, "wait fence 1", "wait", 300, 400, None, ("Present", "ddi"))
    b.slice(2, 0, "wait x", "wait", 0, 500, None, None)
    # a callback of a DDI that lost its bin to a wait is not drawn inside the wait
    b.slice(2, 0, "LockAsync", "ddi", 500, 10, None, None)
    b.slice(2, 1, "pfnLockCb", "cb", 502, 5, None, ("LockAsync", "ddi"))
    b.slice(2, 0, "wait y", "wait", 520, 80, None, None)
    rows1 = b.winners(1)
    assert rows1[0] == ["Present"] * 10
    assert rows1[1] == [None, "pfnRenderCb", None, "wait", "wait", "wait", "wait", None, None,
                        None]
    rows2 = b.winners(2)
    assert rows2[0][5] == "wait"
    assert rows2[1][5] is None


def test_colours_are_stable() -> None:
    assert colour("LockAsync") == COLOURS["LockAsync"]
    assert colour("SomeNewDDI") == colour("SomeNewDDI")
    assert colour("SomeNewDDI").startswith("#")


def test_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = mimic_trace(tmp_path / "m.jsonl", frames=1)
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailable):
        plot_png(trace, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_cut_short_last_line_is_said_once(tmp_path: Path, capsys) -> None:
    # plot reads the trace twice (the extent, then the bins): the warning came twice
    from wddmemu import _cli

    trace = scenario_trace(tmp_path / "t.jsonl", "lock-flags")
    trace.write_bytes(trace.read_bytes() + b'{"step":9999,"t":0,"thr')
    assert _cli.main(["trace", "plot", str(trace), "--png", str(tmp_path / "t.png")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "cut short" in line] == [
        f"wddmemu: warning: {trace}:{len(trace.read_bytes().splitlines())}: the last line is "
        "cut short (was the writer killed?): ignored"]


@pytest.mark.parametrize("kwargs, msg", [
    ({"width": 0}, "width takes 4..200 inches, not 0"),
    ({"width": float("nan")}, "width takes 4..200 inches, not nan"),
    ({"width": 1e9}, "width takes 4..200 inches, not 1000000000.0"),
    ({"width": True}, "width takes 4..200 inches, not bool"),
    ({"dpi": 10**6}, "dpi takes an int 10..300, not 1000000"),
    ({"dpi": 2**300}, "dpi takes an int 10..300, not an int of 301 bits"),
    ({"dpi": 99.5}, "dpi takes an int 10..300, not 99.5"),
    ({"title": 5}, "title is a string or None, not int"),
    ({"out": None}, "out needs a file name, not None"),
    ({"out": "-"}, "out needs a file name, not '-'"),
])
def test_arguments_it_cannot_draw_with_are_refused_before_the_trace_is_read(
        tmp_path: Path, kwargs: dict[str, Any], msg: str) -> None:
    # plot_png checks its own arguments (D9: width=0 was PIL's "cannot write empty image",
    # width=1e9 a MemoryError, dpi=10**6 a matplotlib error after half a minute), with the
    # CLI's ranges; the trace named does not exist, so only the argument can be refused
    out = kwargs.pop("out", tmp_path / "x.png")
    with pytest.raises(TraceFormatError) as e:
        plot_png(tmp_path / "missing.jsonl", out, **kwargs)
    assert str(e.value) == msg and e.value.path == ""
    assert not list(tmp_path.iterdir())


def test_the_cli_takes_the_api_checks(tmp_path: Path, capsys) -> None:
    from wddmemu import _cli

    trace = mimic_trace(tmp_path / "m.jsonl", frames=1)
    for width, png in (("3.9", "x.png"), ("16", "-")):
        assert _cli.main(["trace", "plot", str(trace), "--png", png, "--width", width]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["wddmemu: error: --width takes 4..200 inches, not 3.9",
                   "wddmemu: error: --png needs a file name, not '-'"]
