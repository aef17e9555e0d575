"""The ``wddmemu`` command line.

Exit codes: 0 clean, 1 a rule broke (or a failure was found / reproduced), 2 bad input (one line
on stderr, never a traceback), 3 internal error.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ._runner import DEFAULT_DRIVER, RunSpec, ScenarioResult, SpecError, run_scenario

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class BadInput(click.ClickException):
    exit_code = EXIT_BAD_INPUT


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise BadInput(f"{text!r} is not an integer (decimal or 0x hex)") from None


def _params(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise BadInput(f"-p takes key=value, not {it!r}")
        out[k.strip()] = v.strip()
    return out


# shared options of run / explore ------------------------------------------------------------


def scenario_options(fn: Any) -> Any:
    opts = [
        click.argument("scenario"),
        click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="scenario parameter (repeatable)"),
        click.option("--driver", default=DEFAULT_DRIVER, show_default=True,
                     help="'reference', a seeded variant name, or MODULE:ATTR"),
        click.option("--ddi-version", default=None, help="the driver's DriverVersion, e.g. 0xB"),
        click.option("--bug", "bugs", multiple=True, help="a seeded runtime bug (repeatable)"),
        click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio",
                     show_default=True),
        click.option("--depth", default=3, show_default=True, help="PCT depth d"),
        click.option("--pct-steps", default=1000, show_default=True,
                     help="PCT's k: the expected number of steps of a run"),
        click.option("--step-budget", default=200_000, show_default=True,
                     help="livelock guard: scheduling points per run"),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _spec(scenario: str, params: tuple[str, ...], driver: str, ddi_version: str | None,
          bugs: tuple[str, ...], backend: str, depth: int, pct_steps: int, step_budget: int,
          strategy: str, seed: int) -> RunSpec:
    return RunSpec(
        scenario=scenario, params=_params(params), driver=driver,
        ddi_version=None if ddi_version is None else _int(ddi_version), bugs=tuple(bugs),
        strategy=strategy, seed=seed, depth=depth, pct_steps=pct_steps, backend=backend,
        step_budget=step_budget,
    )


# commands -----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wddmemu", prog_name="wddmemu")
def cli() -> None:
    """Emulate the WDDM multithreaded lock path: run, explore and replay concurrency
    scenarios of the D3D9 runtime, a user-mode driver and the kernel."""


@cli.command("scenarios")
def scenarios_cmd() -> int:
    """List the scenarios with their parameters."""
    import scenarios

    console = Console()
    table = Table(show_lines=False, box=None, pad_edge=False)
    table.add_column("scenario", style="bold")
    table.add_column("description")
    table.add_column("parameters")
    for name in sorted(scenarios.REGISTRY):
        sc = scenarios.REGISTRY[name]
        ps = ", ".join(f"{k}={p.default}" for k, p in sc.params.items()) or "-"
        table.add_row(name, sc.description, ps)
    console.print(table)
    return EXIT_OK


@cli.command("run")
@scenario_options
@click.option("--strategy", type=click.Choice(["fifo", "random", "pct"]), default="fifo",
              show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--trace", "trace", default=None, metavar="FILE.jsonl",
              help="write the trace log (JSON lines) here")
def run_cmd(scenario: str, params: tuple[str, ...], driver: str, ddi_version: str | None,
            bugs: tuple[str, ...], backend: str, depth: int, pct_steps: int, step_budget: int,
            strategy: str, seed: int, trace: str | None) -> int:
    """Run SCENARIO under one schedule and print a summary."""
    spec = _spec(scenario, params, driver, ddi_version, bugs, backend, depth, pct_steps,
                 step_budget, strategy, seed)
    from ._runner import check_spec

    check_spec(spec)
    if trace:
        try:
            open(trace, "wb").close()
        except OSError as e:
            raise BadInput(f"cannot write trace file {trace}: {e.strerror}") from None
    res = run_scenario(spec, trace=trace)
    print_summary(Console(), res, trace)
    return EXIT_OK if res.ok else EXIT_FAIL


def print_summary(console: Console, res: ScenarioResult, trace: str | None) -> None:
    run = res.run
    spec = res.spec
    status = "[green]clean[/green]" if run.ok else "[red]FAILED[/red]"
    console.print(
        f"{spec.scenario}: {status} — {run.steps} steps, t={run.time_ns / 1e6:.3f} ms virtual, "
        f"{len(run.decisions)} decisions ({spec.strategy}, seed {spec.seed}, {spec.backend})"
    )
    for d in res.devices:
        t = Table(title=f"device (DDI version {d.driver_version:#x}, "
                        f"MP layer {'on' if d.mp_layer else 'off'})", box=None)
        t.add_column("what")
        t.add_column("count", justify="right")
        for ddi in sorted(d.ddi_calls):
            per = d.ddi_calls[ddi]
            t.add_row(f"DDI {ddi}", f"{sum(per.values())}  "
                      + " ".join(f"{th}:{n}" for th, n in sorted(per.items())))
        for code, n in sorted(d.lock_async_results.items()):
            t.add_row(f"LockAsync → {code}", str(n))
        t.add_row("renames", str(d.renames))
        for reason, n in sorted(d.syncs.items()):
            t.add_row(f"sync: {reason}", str(n))
        t.add_row("frames", str(d.frames))
        t.add_row("draws", str(d.draws))
        t.add_row("command buffers submitted", str(d.command_buffers_submitted))
        t.add_row("queue high-water mark", str(d.queue_high_water))
        console.print(t)
    if run.failure is not None:
        console.print(f"[red]failure[/red]: {run.failure}")
    for v in run.violations:
        console.print(f"[red]{v.rule}[/red] step {v.step} on {v.thread}: {v.message}")
    if not run.ok:
        console.print(f"replay: {spec.command('run', trace)}")
    if trace:
        console.print(f"trace: {trace}")


# entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the documented exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        rv = cli.main(args=argv, prog_name="wddmemu", standalone_mode=False)
    except click.exceptions.Exit as e:
        rv = e.exit_code
    except click.exceptions.Abort:
        err.print("wddmemu: aborted")
        rv = EXIT_BAD_INPUT
    except click.ClickException as e:
        err.print(f"wddmemu: error: {e.format_message()}", markup=False)
        rv = EXIT_BAD_INPUT
    except SpecError as e:
        err.print(f"wddmemu: error: {e}", markup=False)
        rv = EXIT_BAD_INPUT
    except Exception as e:  # an emulator bug: say so in one line, exit 3
        err.print(f"wddmemu: internal error: {type(e).__name__}: {e}", markup=False)
        rv = EXIT_INTERNAL
    if argv is None:
        sys.exit(rv or 0)
    return int(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
