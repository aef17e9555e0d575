"""A scenario's definition mistakes are refused when it is registered, as bad input naming the
scenario and the user's file — never as an ``exception`` finding of every run
(docs/scenarios.md, "Writing a scenario")."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scenarios
from scenarios import Param, scenario
from tests.support.loading import loading_state_kept
from wddmemu import _cli


@pytest.fixture(autouse=True)
def nothing_left_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))  # --load FILE puts its folder first
    before = set(scenarios.REGISTRY.names())
    yield
    for name in set(scenarios.REGISTRY.names()) - before:
        scenarios.REGISTRY.unregister(name)


async def takes_nothing(ctx: Any) -> None:
    pass


async def takes_n(ctx: Any, n: int) -> None:
    pass


def not_async(ctx: Any) -> None:
    pass


async def no_ctx() -> None:
    pass


@pytest.mark.parametrize("fn,kw,says", [
    (takes_nothing, {"n": Param(int, 1, "n")},
     r"takes_nothing\(ctx\) does not take its parameter n \(declared n=Param"),
    (takes_n, {}, r"takes_n\(ctx, n\) needs n, which no Param declares"),
    (not_async, {}, r"not_async\(\) is not async: a scenario is 'async def fn"),
    (no_ctx, {}, r"no_ctx\(\) takes no ctx"),
    (takes_n, {"n": 3}, r"parameter n is 3, not a Param"),
    (takes_n, {"n": Param(int, "3")}, r"parameter n's default '3' is not int"),
    (takes_n, {"n": Param(float, 1.0)}, r"parameter n has type .*float.*: use int, bool or str"),
    (takes_nothing, {"ddi_version": 11.0}, r"ddi_version takes a 32-bit DriverVersion"),
    (takes_nothing, {"kernel": {"max_rename_instances": 2}}, r"kernel= takes a function"),
    (takes_nothing, {"kernel": lambda p: {"max_renames": 2}},
     r"kernel= returns 'max_renames', which is no KernelConfig field"),
    (takes_n, {"n": Param(int, 1), "check": lambda p: "n must be even"},
     r"its defaults fail its own check: n must be even"),
    # h8: the range mistakes named neither the scenario nor the parameter
    (takes_n, {"n": Param(int, 5, range=(10, 1))},
     r"parameter n has range=\(10, 1\): range=\(lo, hi\) needs lo <= hi$"),
    (takes_n, {"n": Param(str, "a", range=(1, 2))},
     r"parameter n is str, but range=\(lo, hi\) bounds an int parameter only$"),
    (takes_n, {"n": Param(int, 1, range=(1,))},  # type: ignore[arg-type]
     r"parameter n has range=\(1,\): range= takes two ints \(lo, hi\)$"),
    (takes_n, {"n": Param(int, 1, range=(0, 2.5))},  # type: ignore[arg-type]
     r"parameter n has range=\(0, 2.5\): range= takes two ints"),
    # h8: a non-str reason was printed as the reason ("scenario b-check2: 42")
    (takes_n, {"n": Param(int, 1), "check": lambda p: 42},
     r'check= returns None \(or ""\) when the parameters go together, or a str saying why '
     r"not, not the int 42$"),
    (takes_n, {"n": Param(int, 1), "check": lambda p: False},
     r"check= returns None .* not the bool False$"),
])
def test_a_definition_mistake_is_refused_at_registration(fn: Any, kw: dict[str, Any],
                                                         says: str) -> None:
    with pytest.raises(ValueError, match=r"^scenario test-def-bad: " + says):
        scenario("test-def-bad", "a mistake", **kw)(fn)
    assert "test-def-bad" not in scenarios.REGISTRY


def test_good_definitions_still_register() -> None:
    @scenario("test-def-kw", "params by keyword", n=Param(int, 2, "n", range=(1, 4)))
    async def by_kw(ctx: Any, *, n: int) -> None:
        pass

    @scenario("test-def-var", "params as **kw", n=Param(bool, False))
    async def var(ctx: Any, **params: Any) -> None:
        pass

    @scenario("test-def-default", "an undeclared parameter with a default")
    async def default(ctx: Any, extra: int = 3) -> None:
        pass

    assert {"test-def-kw", "test-def-var", "test-def-default"} <= set(scenarios.REGISTRY)


def _digest(body: str) -> str:
    """A module name's tail, one per body and the same in every process: ``hash()`` of a str
    is salted per process, and two bodies' ``hash() % 1000`` once collided, so the second
    ``--load`` was refused as a module imported already."""
    return hashlib.blake2b(body.encode(), digest_size=6).hexdigest()


def _module(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text("from scenarios import Param, scenario\nimport wddmemu\n\n" + body)
    return path


@pytest.mark.parametrize("body,line,says", [
    ('@scenario("test-def-m", "p", n=Param(int, 1, "n"))\nasync def s(ctx):\n    pass\n', 4,
     "ValueError: scenario test-def-m: s(ctx) does not take its parameter n"),
    ('@scenario("test-def-s", "sync")\ndef t(ctx):\n    pass\n', 4,
     "ValueError: scenario test-def-s: t() is not async"),
    ('@scenario("dynamic-vb-ring", "clash")\nasync def s(ctx):\n    pass\n', 4,
     "ValueError: scenario dynamic-vb-ring is registered twice (first by scenarios.builtin)"),
    ('@wddmemu.driver("reference")\ndef make(driver_version=None):\n    pass\n', 4,
     "ValueError: driver reference is registered twice (first by umd)"),
])
def test_loading_a_bad_definition_is_one_line_naming_the_users_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int,
        says: str) -> None:
    path = _module(tmp_path, f"baddef{line}_{_digest(body)}", body)
    assert _cli.main(["--load", str(path), "scenarios"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"wddmemu: error: cannot load {path}: {says}")
    assert err[0].endswith(f"({path}:{line})"), err[0]  # the @-line, not the registry's
    assert "_registry.py" not in err[0]


def test_a_bad_definition_never_becomes_a_finding(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The old behaviour: registered, then every run an ``exception`` finding (exit 1)."""
    path = _module(tmp_path, "baddefrun",
                   '@scenario("test-def-run", "p", n=Param(int, 1, "n"))\n'
                   'async def s(ctx):\n    pass\n')
    assert _cli.main(["--load", str(path), "explore", "test-def-run", "--schedules", "3",
                      "--save-dir", str(tmp_path / "f")]) == 2
    assert not (tmp_path / "f").exists() or not any((tmp_path / "f").iterdir())
    assert "cannot load" in capsys.readouterr().err


@pytest.mark.parametrize("body, argv, says", [
    ('@scenario("test-kernel-raises", "d", n=Param(int, 1, "n", range=(1, 5)),\n'
     '          kernel=lambda p: {"max_rename_instances": 10 // (p["n"] - 2)})\n'
     'async def s(ctx, n):\n    pass\n', ["-p", "n=2"],
     "scenario test-kernel-raises: kernel= raised ZeroDivisionError: integer division or "
     "modulo by zero with n=2 (at {mod}.py:5)"),
    ('@scenario("test-check-raises", "d", n=Param(int, 1, "n", range=(1, 5)),\n'
     '          check=lambda p: 1 / 0 if p["n"] == 3 else None)\n'
     'async def s(ctx, n):\n    pass\n', ["-p", "n=3"],
     "scenario test-check-raises: check= raised ZeroDivisionError: division by zero with n=3 "
     "(at {mod}.py:5)"),
    ('@scenario("test-kernel-value", "d", kernel=lambda p: {"max_rename_instances": "lots"})\n'
     'async def s(ctx):\n    pass\n', [],
     "scenario test-kernel-value: kernel= gave a configuration the kernel refuses (ValueError"),
], ids=["kernel-raises", "check-raises", "kernel-value"])
def test_kernel_and_check_failing_for_some_parameters_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, argv: list[str],
        says: str) -> None:
    """h8: ``kernel=``/``check=`` judged at registration on the defaults only, then raising
    for another ``-p`` value (or giving a value KernelConfig refuses) was exit 3."""
    mod = f"kerneldef_{_digest(body)}"
    path = _module(tmp_path, mod, body)
    name = body.split('"')[1]
    with loading_state_kept():  # the --load is this process's: undone after
        assert _cli.main(["--load", str(path), "run", name, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wddmemu: error: " + says.format(mod=mod)), err


def test_kernel_runs_once_a_run() -> None:
    """The spec's check and the run share one kernel configuration: a scenario's ``kernel=``
    (the user's code, maybe with side effects or cost) is called once a run, not twice."""
    import wddmemu

    calls: list[dict[str, Any]] = []

    def kernel(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(params)
        return {"max_rename_instances": 2 + params["n"]}

    @scenario("test-kernel-once", "kernel= counted", kernel=kernel, n=Param(int, 1, "n"))
    async def once(ctx: Any, n: int) -> None:
        assert ctx.kernel.config.max_rename_instances == 2 + n

    calls.clear()  # registration judged the defaults
    res = wddmemu.run_scenario(wddmemu.RunSpec("test-kernel-once", params={"n": 3}))
    assert res.ok, res.run.failure
    assert calls == [{"n": 3}]


def test_a_check_returning_a_non_str_for_a_given_value_says_what_check_returns() -> None:
    """The defaults pass; ``-p n=3`` makes ``check=`` return 42 (h8's b_check2.py)."""
    @scenario("test-def-check2", "check returns a non-str",
              check=lambda p: 42 if p["n"] == 3 else None, n=Param(int, 1, "n", range=(1, 5)))
    async def f(ctx: Any, n: int) -> None:
        pass

    sc = scenarios.get("test-def-check2")
    assert sc.resolve({"n": "2"}) == {"n": 2}
    with pytest.raises(ValueError) as ei:
        sc.resolve({"n": "3"})
    assert str(ei.value) == ('scenario test-def-check2: check= returns None (or "") when the '
                             "parameters go together, or a str saying why not, not the int 42")
    assert sc.resolve({"n": "4"}) == {"n": 4}  # "" and None both mean fine


def test_a_range_mistake_is_not_refused_before_the_names_are_known() -> None:
    """A ``Param`` is only data until ``@scenario`` has its name and the scenario's."""
    assert Param(int, 5, range=(10, 1)).range == (10, 1)


def test_loading_a_bad_range_names_the_scenario_the_parameter_and_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = ('@scenario("test-def-range2", "reversed", n=Param(int, 5, "n", range=(10, 1)))\n'
            "async def f(ctx, n):\n    pass\n")
    path = _module(tmp_path, f"badrange_{_digest(body)}", body)
    assert _cli.main(["--load", str(path), "scenarios"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (
        "ValueError: scenario test-def-range2: parameter n has range=(10, 1): range=(lo, hi) "
        "needs lo <= hi" in err[0]) and err[0].endswith(f"({path}:4)"), err
